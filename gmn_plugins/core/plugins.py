"""The plugin manager: every entry point of the group ``gmn_plugins`` loaded one by one, failures recorded.

The built-ins are entry points of this project's own distribution (``gmn-plugins``, pyproject.toml): MESE's query
kinds and sensors, the model families and the built-in modalities register through the very hooks a third-party
package implements, and this module imports none of them (nor any model code). They load first, so a third-party
plugin can never take a built-in name. ``GMN_LOAD_PLUGINS=a,b`` restricts the third-party entry points to those
names (the built-ins always load); an empty value loads the built-ins only.

Every mistake of a plugin is recorded where it is made, as one line naming its source (``PluginStatus.errors``): an
import that fails (with the plugin's file and line), a misspelt hook or one not marked ``@hookimpl``, a hook that
raises, and each sensor, family or modality file that cannot be registered; the plugin's other items still register.
"""

from __future__ import annotations

import difflib
import importlib.util
import linecache
import os
import re
import sys
import tomllib
import traceback
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from .. import __version__
from . import hookspecs
from .modality import Family, Modality, Sensor
from .modality_spec import ModalityFile, ModalitySpec, expand, read_modality_file
from .query import QueryKind
from .registry import PluginError, PluginStatus, Registry, _closest
from .spec import SpecError

ENTRY_POINT_GROUP = "gmn_plugins"
PROJECT = "gmn-plugins"  # the distribution whose entry points are the built-ins


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _short(path: str) -> str:
    """``path`` relative to the ``sys.path`` entry that holds it (``my_plugin/__init__.py``), else unchanged."""
    roots = [os.path.abspath(entry or ".") for entry in sys.path]
    roots = [r for r in roots if path.startswith(r.rstrip(os.sep) + os.sep)]
    return os.path.relpath(path, max(roots, key=len)) if roots else path


def _plugin_root(module_name: str) -> str | None:
    """The directory of the plugin's top-level package, or its module file (without importing it)."""
    try:
        spec = importlib.util.find_spec(module_name.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return os.path.abspath(list(spec.submodule_search_locations)[0])
    return os.path.abspath(spec.origin) if spec.origin else None


def _where(exc: BaseException, module_name: str) -> str:
    """`` (FILE:LINE)`` where ``exc`` was raised: the last traceback frame inside the plugin's own package (or
    module), else the last frame; a ``SyntaxError``'s own file and line."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({_short(exc.filename)}:{exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return ""
    root = _plugin_root(module_name)
    inside = [f for f in frames if root and (f.filename == root or f.filename.startswith(root + os.sep))]
    frame = (inside or frames)[-1]
    return f" ({_short(frame.filename)}:{frame.lineno})"


def _failure(exc: BaseException, module_name: str) -> str:
    """``Type: message (FILE:LINE)``, one line."""
    text = f": {exc}" if str(exc) else ""  # KeyboardInterrupt has no message
    return _one_line(f"{type(exc).__name__}{text}{_where(exc, module_name)}")


def _defined_at(function) -> str:
    """``FILE:LINE`` of the ``def`` of ``function`` (past its decorators)."""
    code = getattr(function, "__code__", None)
    if code is None:
        return "?"
    line = code.co_firstlineno
    while linecache.getline(code.co_filename, line).lstrip().startswith("@"):
        line += 1
    return f"{_short(code.co_filename)}:{line}"


def _plugin_manager() -> tuple[pluggy.PluginManager, list[PluginStatus]]:
    pm = pluggy.PluginManager("gmn_plugins")
    pm.add_hookspecs(hookspecs)
    statuses = []
    allow = os.environ.get("GMN_LOAD_PLUGINS")
    allowed = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: not _builtin(ep))  # stable: built-ins first
    if not any(_builtin(ep) for ep in found):
        statuses.append(PluginStatus(PROJECT, PROJECT, __version__, "built-in", [PluginError(
            f"no entry point of the distribution {PROJECT} in group {ENTRY_POINT_GROUP}: the built-in query kinds, "
            f"sensors, families and modalities are missing; install the project (pip install -e .)")]))  # fmt: skip
    for ep in found:
        builtin = _builtin(ep)
        if not builtin and allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist.name if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        status = PluginStatus(ep.name, dist, version, "built-in" if builtin else "entry point")
        statuses.append(status)
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except BaseException as exc:  # a broken plugin must not take the others down, whatever it raises (sys.exit)
            status.errors.append(PluginError(_failure(exc, ep.module)))
            continue
        _check_hooks(pm, plugin, status)
    names = sorted({ep.name for ep in found if not _builtin(ep)})
    for name in sorted((allowed or set()) - {ep.name for ep in found}):  # a misspelt name loads nothing: say so
        hint = _closest(name, names) or (f"; installed: {', '.join(names)}" if names else "; none is installed")
        statuses.append(PluginStatus(name, "?", "?", "GMN_LOAD_PLUGINS", [PluginError(
            f"GMN_LOAD_PLUGINS names {name!r}, but no installed plugin has that entry point name{hint}")]))  # fmt: skip
    return pm, statuses


def _builtin(ep) -> bool:
    """Whether an entry point belongs to this project's own distribution (a built-in)."""
    return ep.dist is not None and re.sub(r"[-_.]+", "-", ep.dist.name).lower() == PROJECT


def _check_hooks(pm: pluggy.PluginManager, plugin, status: PluginStatus) -> None:
    """Record a misspelt hook (pluggy's ``check_pending``, per plugin) and a hook function not marked ``@hookimpl``;
    the plugin's valid hooks keep working."""
    known = sorted(name for name, caller in vars(pm.hook).items() if not name.startswith("_") and caller.has_spec())
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f"; the hooks are {', '.join(known)}"
                status.errors.append(PluginError(f"unknown hook {name}{hint} ({_defined_at(impl.function)})"))
    for name in known:
        function = getattr(plugin, name, None)
        if callable(function) and all(impl.plugin is not plugin for impl in getattr(pm.hook, name).get_hookimpls()):
            status.errors.append(PluginError(f"{name} is not marked @hookimpl (from gmn_plugins.plugin import "
                                             f"hookimpl), so it is never called ({_defined_at(function)})"))  # fmt: skip


def _call(pm: pluggy.PluginManager, hook_name: str, statuses: dict[str, PluginStatus], register_for) -> None:
    """Call one registrar hook plugin by plugin, so each registration is attributed and failures stay local."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        status = statuses[impl.plugin_name]
        try:
            impl.function(register=register_for(status))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt of a plugin's hook included
            module_name = getattr(impl.plugin, "__name__", type(impl.plugin).__module__)
            status.errors.append(PluginError(f"{hook_name}: {_failure(exc, module_name)}"))


def _identify(kind: str, item) -> tuple[str, str]:
    """(name, file) of a registered item, as far as it can be told: a modality file's ``name`` field (else its stem)."""
    if kind != "modality" or isinstance(item, (ModalitySpec, ModalityFile)):
        return str(getattr(item, "name", item)), ""
    path = Path(str(item))
    try:
        return read_modality_file(path).name, str(item)
    except Exception:
        pass
    try:  # an invalid file still names its modality, mostly: the error must reach whoever asks for that name
        text = path.read_text(errors="replace")
    except OSError:
        return path.stem, str(item)
    try:
        name = tomllib.loads(text).get("name")
    except ValueError:
        found = re.search(r"""^[ \t]*name[ \t]*=[ \t]*(?:"([^"\n]*)"|'([^'\n]*)')""", text, re.MULTILINE)
        name = found and (found.group(1) if found.group(1) is not None else found.group(2))
    return (name if isinstance(name, str) and name else path.stem), str(item)


def _recorded(kind: str, status: PluginStatus, register_one):
    """The ``register`` a plugin's hook gets: a failure becomes one ``PluginError`` naming the file (the modality TOML,
    else the plugin's line that called ``register``), the item and the distribution, and the plugin goes on."""

    def register(item) -> None:
        caller = sys._getframe(1)
        try:
            register_one(item)
        except Exception as exc:
            name, file = _identify(kind, item)
            where = file or f"{_short(caller.f_code.co_filename)}:{caller.f_lineno}"
            text = _one_line(exc if isinstance(exc, (SpecError, ValueError)) else f"{type(exc).__name__}: {exc}")
            for prefix in (f"{where}: ", f"{name}: "):
                text = text.removeprefix(prefix)
            message = f"{where}: {kind} {name!r} ({status.distribution}=={status.version}): {text}"
            status.errors.append(PluginError(message, kind, name, file))

    return register


def load_registry() -> Registry:
    """Discover plugins and return what they registered. Never raises for a broken plugin: see ``Registry.plugins``.

    Query kinds register first, then sensors (which name a query kind), model families, and modalities (which name a
    sensor and a family). Each registered
    item (a modality file: all the modalities it declares) is accepted or refused on its own.
    """
    pm, status_list = _plugin_manager()
    statuses = {s.name: s for s in status_list}
    registry = Registry(plugins=status_list)

    def claim(kind: str, table: dict, items: list, status: PluginStatus) -> None:
        """Add ``items`` to ``table``, all or none: a name another plugin registered is refused."""
        for item in items:
            if item.name in table:
                first = registry.providers[f"{kind}:{item.name}"]
                raise ValueError(f"{kind} {item.name!r} is registered by both {first.distribution} ({first.name}) "
                                 f"and {status.distribution} ({status.name})")  # fmt: skip
        for item in items:
            registry.providers[f"{kind}:{item.name}"] = status
            table[item.name] = item

    def simple_register(kind: str, table: dict, cls: type):
        def register_for(status: PluginStatus):
            def register(item) -> None:
                if not isinstance(item, cls):
                    raise TypeError(f"expected a {cls.__name__}, got {type(item).__name__}")
                claim(kind, table, [item], status)

            return _recorded(kind, status, register)

        return register_for

    def modality_register(status: PluginStatus):
        def register(item) -> None:
            path = ""

            def family_of(name: str) -> Family:
                if name in broken_families:
                    raise SpecError(f"family: family {name!r} is broken: {broken_families[name]}")
                if name not in registry.families:
                    raise SpecError(f"family: unknown family {name!r}; installed: {', '.join(sorted(registry.families))}")
                return registry.families[name]

            if isinstance(item, ModalitySpec):
                specs = [item]
            else:
                if not isinstance(item, ModalityFile):
                    path = str(item)
                    item = read_modality_file(Path(path))
                if item.sensor not in registry.sensors:
                    raise SpecError(f"sensor: unknown sensor {item.sensor!r}; installed: "
                                    f"{', '.join(sorted(registry.sensors))}")  # fmt: skip
                specs = expand(item, registry.sensors[item.sensor].shape, path or item.name, family_of(item.family))
            modalities = []
            for spec in specs:
                family = family_of(spec.family)
                try:
                    family.check_shape(tuple(spec.shape))
                except ValueError as exc:
                    raise SpecError(f"shape: {exc}") from None
                sensor = registry.sensors.get(spec.sensor)
                if sensor is None:
                    raise SpecError(f"sensor: unknown sensor {spec.sensor!r}")
                modality = Modality(spec, sensor, family, status.distribution, status.version, status.source, path,
                                    registry.query_kinds[sensor.query])  # fmt: skip
                modality.check()
                modalities.append(modality)
            claim("modality", registry.modalities, modalities, status)

        return _recorded("modality", status, register)

    def sensor_register(status: PluginStatus):
        def register(item) -> None:
            if not isinstance(item, Sensor):
                raise TypeError(f"expected a Sensor, got {type(item).__name__}")
            if item.query not in registry.query_kinds:
                kinds = sorted(registry.query_kinds)
                raise ValueError(f"query: unknown query kind {item.query!r}{_closest(item.query, kinds)}; installed: "
                                 f"{', '.join(kinds)}")  # fmt: skip
            claim("sensor", registry.sensors, [item], status)

        return _recorded("sensor", status, register)

    broken_families: dict[str, str] = {}

    def family_register(status: PluginStatus):
        def register(item) -> None:
            if not isinstance(item, Family):
                raise TypeError(f"expected a Family, got {type(item).__name__}")
            problems = item.reference_problems()  # a misspelt class path: refused here, not at the first model
            if problems:
                broken_families.setdefault(item.name, "; ".join(problems))
                raise ValueError("; ".join(problems))
            claim("family", registry.families, [item], status)

        return _recorded("family", status, register)

    _call(pm, "register_query_kinds", statuses, simple_register("query", registry.query_kinds, QueryKind))
    _call(pm, "register_sensors", statuses, sensor_register)
    _call(pm, "register_families", statuses, family_register)
    _call(pm, "register_modalities", statuses, modality_register)
    return registry
