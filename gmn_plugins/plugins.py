"""The plugin manager: built-ins and entry points (group ``gmn_plugins``) loaded one by one, failures recorded.

Built-in sensors (``gmn_plugins.mese.sensors``) and modalities (``gmn_modalities``) register through the very hooks a
third-party package implements. ``GMN_LOAD_PLUGINS=a,b`` restricts entry points to those names; an empty value loads
the built-ins only.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from . import __version__, hookspecs
from .modality import Modality
from .registry import PluginStatus, Registry
from .spec import ModalitySpec, SpecError, load_modality_spec

ENTRY_POINT_GROUP = "gmn_plugins"
BUILTIN_PLUGINS = ("gmn_plugins.mese.sensors", "gmn_modalities")


def _plugin_manager() -> tuple[pluggy.PluginManager, list[PluginStatus]]:
    pm = pluggy.PluginManager("gmn_plugins")
    pm.add_hookspecs(hookspecs)
    statuses = []
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        statuses.append(PluginStatus(module_name, "gmn-plugins", __version__, "built-in"))
    allow = os.environ.get("GMN_LOAD_PLUGINS")
    allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        status = PluginStatus(ep.name, dist, version, "entry point")
        statuses.append(status)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            status.error = f"{type(exc).__name__}: {exc}"
    return pm, statuses


def _call(pm: pluggy.PluginManager, hook_name: str, statuses: dict[str, PluginStatus], register_for) -> None:
    """Call one registrar hook plugin by plugin, so each registration is attributed and failures stay local."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        status = statuses[impl.plugin_name]
        try:
            impl.function(register=register_for(status))
        except Exception as exc:
            status.error = status.error or f"{hook_name}: {type(exc).__name__}: {exc}"


def load_registry() -> Registry:
    """Discover plugins and return what they registered. Never raises for a broken plugin: see ``Registry.plugins``."""
    pm, status_list = _plugin_manager()
    statuses = {s.name: s for s in status_list}
    registry = Registry(plugins=status_list)
    owner: dict[str, PluginStatus] = {}

    def sensor_register(status: PluginStatus):
        def register(sensor) -> None:
            if sensor.name in registry.sensors:
                first = owner["sensor:" + sensor.name]
                raise ValueError(f"sensor {sensor.name!r} is registered by both {first.distribution} and {status.distribution}")
            registry.sensors[sensor.name] = sensor
            owner["sensor:" + sensor.name] = status

        return register

    def modality_register(status: PluginStatus):
        def register(spec_or_path) -> None:
            path = ""
            if isinstance(spec_or_path, ModalitySpec):
                spec = spec_or_path
            else:
                path = str(spec_or_path)
                spec = load_modality_spec(Path(path))
            if spec.name in registry.modalities:
                first = owner["modality:" + spec.name]
                raise ValueError(f"modality {spec.name!r} is registered by both {first.distribution} and {status.distribution}")
            if spec.sensor not in registry.sensors:
                raise SpecError(f"{path or spec.name}: sensor: unknown sensor {spec.sensor!r}")
            modality = Modality(spec, registry.sensors[spec.sensor], status.distribution, status.version, status.source, path)
            modality.check()
            registry.modalities[spec.name] = modality
            owner["modality:" + spec.name] = status

        return register

    _call(pm, "register_sensors", statuses, sensor_register)
    _call(pm, "register_modalities", statuses, modality_register)
    return registry
