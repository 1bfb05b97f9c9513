"""The hooks a gmn-plugins plugin may implement (one signature, one line each; pluggy project "gmn_plugins").

Mark each with ``@hookimpl`` (``from gmn_plugins.plugin import hookimpl``). A misspelt hook name, or a hook function
left unmarked, makes the plugin a broken row of ``gmn-plugins list`` that says so; its other hooks still run.
"""

from pluggy import HookspecMarker

hookspec = HookspecMarker("gmn_plugins")


@hookspec
def register_modalities(register):
    """Call ``register(path_or_spec)`` for each modality TOML file (one modality or a family), or a ``ModalitySpec``."""


@hookspec
def register_query_kinds(register):
    """Call ``register(kind)`` for each query kind (a ``QueryKind``: where a view is taken from)."""


@hookspec
def register_sensors(register):
    """Call ``register(sensor)`` for each sensor (a ``Sensor``) the environment can record per view."""


@hookspec
def register_families(register):
    """Call ``register(family)`` for each model family (a ``Family``: networks, shape, drawing)."""
