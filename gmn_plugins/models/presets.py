"""Model size presets (reference §0 table and §8.1)."""

import attrs


def _odd(instance, attribute, value):
    if value % 2 != 1:
        raise ValueError(f"{attribute.name} must be odd (same-size padding k // 2), got {value}")


@attrs.frozen
class Preset:
    """Sizes of one GMN. Every field is a channel count or a count of steps.

    r_channels: representation channels of every modality encoder (authors' nc_context).
    hidden: hidden channels of every ConvLSTM (DRAW cells and renderers).
    z_channels: latent channels per DRAW step; the renderers see steps * z_channels channels.
    steps: DRAW steps T, also the renderers' ConvLSTM steps.
    kernel: kernel of the ConvLSTMs and Gaussian heads (odd).
    decoder_width: width of the image decoder (authors' nc_enc); its middle layer has twice this.
    vector_hidden: width of the vector encoder and vector renderer MLPs.
    """

    r_channels: int
    hidden: int
    z_channels: int
    steps: int
    kernel: int = attrs.field(validator=_odd)
    decoder_width: int
    vector_hidden: int


PRESETS = {
    # The authors' architecture, conv-apoe-multimodal-cgqn-v4 (reference §0, §2-4).
    "v4": Preset(256, 64, 3, 12, 5, 32, 512),
    # CPU-sized, same 16x16 grid and kernel as v4: 3.25M parameters for image (3, 64, 64) + vector (132,); one
    # training step (8 scenes, 7 context + 8 target points per modality and scene, Adam) takes about 0.42-0.45 s
    # on 2 CPU threads.
    "small": Preset(32, 32, 3, 4, 5, 16, 128),
    # Tests and smoke runs: every code path of the larger presets at a fraction of their cost.
    "tiny": Preset(16, 16, 2, 2, 3, 8, 32),
}
