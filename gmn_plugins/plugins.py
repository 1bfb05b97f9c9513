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
from .modality_spec import ModalityFile, ModalitySpec, expand, read_modality_file
from .registry import PluginStatus, Registry
from .spec import SpecError

ENTRY_POINT_GROUP = "gmn_plugins"
BUILTIN_PLUGINS = ("gmn_plugins.mese.sensors", "gmn_plugins.families", "gmn_modalities")


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
    """Discover plugins and return what they registered. Never raises for a broken plugin: see ``Registry.plugins``.

    Sensors register first, then model families, then modalities (which name a sensor and a family).
    """
    pm, status_list = _plugin_manager()
    statuses = {s.name: s for s in status_list}
    registry = Registry(plugins=status_list)
    owner: dict[str, PluginStatus] = {}

    def claim(kind: str, name: str, table: dict, status: PluginStatus) -> None:
        if name in table:
            first = owner[f"{kind}:{name}"]
            raise ValueError(f"{kind} {name!r} is registered by both {first.distribution} ({first.name}) and "
                             f"{status.distribution} ({status.name})")  # fmt: skip
        owner[f"{kind}:{name}"] = status

    def simple_register(kind: str, table: dict):
        def register_for(status: PluginStatus):
            def register(item) -> None:
                claim(kind, item.name, table, status)
                table[item.name] = item

            return register

        return register_for

    def modality_register(status: PluginStatus):
        def register(item) -> None:
            path = ""
            if isinstance(item, ModalitySpec):
                specs = [item]
            else:
                if not isinstance(item, ModalityFile):
                    path = str(item)
                    item = read_modality_file(Path(path))
                where = path or item.name
                if item.sensor not in registry.sensors:
                    raise SpecError(f"{where}: sensor: unknown sensor {item.sensor!r}; installed: "
                                    f"{', '.join(sorted(registry.sensors))}")  # fmt: skip
                specs = expand(item, registry.sensors[item.sensor].shape, where)
            for spec in specs:
                family = registry.families.get(spec.family)
                if family is None:
                    raise SpecError(f"{path or spec.name}: family: unknown family {spec.family!r}; installed: "
                                    f"{', '.join(sorted(registry.families))}")  # fmt: skip
                if len(spec.shape) != family.dims:
                    raise SpecError(f"{path or spec.name}: shape: family {family.name!r} needs {family.dims} "
                                    f"dimensions, got {spec.shape}")  # fmt: skip
                sensor = registry.sensors.get(spec.sensor)
                if sensor is None:
                    raise SpecError(f"{path or spec.name}: sensor: unknown sensor {spec.sensor!r}")
                modality = Modality(spec, sensor, family, status.distribution, status.version, status.source, path)
                modality.check()
                claim("modality", spec.name, registry.modalities, status)
                registry.modalities[spec.name] = modality

        return register

    _call(pm, "register_sensors", statuses, simple_register("sensor", registry.sensors))
    _call(pm, "register_families", statuses, simple_register("family", registry.families))
    _call(pm, "register_modalities", statuses, modality_register)
    return registry
