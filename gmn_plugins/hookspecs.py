"""The hooks a gmn-plugins plugin may implement (one signature, one line each; pluggy project "gmn_plugins")."""

from pluggy import HookspecMarker

hookspec = HookspecMarker("gmn_plugins")


@hookspec
def register_modalities(register):
    """Call ``register(spec_or_path)`` for each modality: a ``ModalitySpec`` or the path of its TOML file."""


@hookspec
def register_sensors(register):
    """Call ``register(sensor)`` for each sensor (a ``Sensor``) the environment can record per view."""
