"""gmn-plugins: Generative Multisensory Networks with a declarative modality plugin registry.

Use a trained run from Python (``gmn_plugins.api``; worked example: docs/python-api.md):

    open_run(path, device="cpu") -> Run     open a trained run (a run directory or a checkpoint file) for inference
    Run.observe(observations) -> Scene      infer a scene from {modality: (values, queries)} in sensor units
    Run.classify(contexts, observations)    which of K scenes each observation set came from (paper Eq. 6)
    Run.mese_scene(seed) -> MeseScene       a new MESE object to observe, made with the run's data settings
    Scene.render(modality, queries)         render any modality at any queries from the prior, in sensor units
    Scene.log_likelihood(modality, ...)     IWAE log-likelihood of observations, nats per dimension
    MeseScene.observations(counts)          views and grasps of the object as MESE takes them
    MeseScene.record(modality, queries)     the true views at posed queries (the camera)
    camera_orbit(views, pitch) -> queries   camera viewpoints evenly around the object
    plot_views(rows, path) -> Figure        truth and renders side by side

Plugin authors import from one module, ``gmn_plugins.plugin`` (``hookimpl``, ``Sensor``, ``Family``, ...; the hooks:
``gmn_plugins.core.hookspecs``). The package's folders are its layers, lowest first: ``core``, ``runtime``, ``data``,
``mese`` and ``models``, ``training``, ``api``, ``evaluation`` and ``authoring``, ``plugin``, ``cli``; none imports a
layer above its own (tests/test_layers.py).

``import gmn_plugins`` imports neither torch nor MuJoCo; the API's names load them on first use.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

from . import _moved

hookimpl = pluggy.HookimplMarker("gmn_plugins")
_moved.install()  # the modules' old paths (gmn_plugins.spec, ...) work for one release, with a warning

try:
    __version__ = version("gmn-plugins")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

_API = ("open_run", "Run", "Scene", "MeseScene", "Classification", "camera_orbit", "plot_views")

__all__ = ["hookimpl", "__version__", *_API]


def __getattr__(name: str):
    """The public API's names (``gmn_plugins.api``), imported on first use: torch and MuJoCo load only then."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gmn_plugins' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
