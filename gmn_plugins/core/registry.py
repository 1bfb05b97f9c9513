"""What the plugins registered: sensors and modalities, with lookups that suggest the closest match and name the
installed plugins that are broken."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import attrs

from .modality import Family, Modality, Sensor
from .query import QueryKind
from .spec import SpecError


@attrs.frozen
class PluginError:
    """One thing a plugin got wrong, as one line: ``message``; ``kind`` is ``"plugin"`` (import, hook name, a hook that
    raised) or what failed to register (``"sensor"``, ``"family"``, ``"modality"``), ``name`` its name (a modality
    family's template) and ``file`` the modality TOML, if any."""

    message: str
    kind: str = "plugin"
    name: str = ""
    file: str = ""

    def concerns(self, modality: str) -> bool:
        """Whether this error is about the modality ``modality``: its name, its file's stem, or a name its family
        template (``fingertip-{f}``) gives."""
        if self.kind != "modality":
            return False
        if modality in (self.name, Path(self.file).stem if self.file else None):
            return True
        parts = re.split(r"\{[^{}]*\}", self.name)
        return len(parts) > 1 and re.fullmatch(".+".join(map(re.escape, parts)), modality) is not None


@attrs.define
class PluginStatus:
    """One loaded (or failed) plugin: its name, distribution==version, source and the errors it has, if any."""

    name: str
    distribution: str
    version: str
    source: str
    errors: list[PluginError] = attrs.Factory(list)

    @property
    def error(self) -> str:
        """All errors in one line ("" when the plugin is fine)."""
        return "; ".join(e.message for e in self.errors)

    def describe(self) -> str:
        return f"plugin {self.name} (distribution {self.distribution} {self.version})"


@attrs.define
class Registry:
    """Query kinds, sensors, model families and modalities by name, plus the status of every plugin that contributed
    (or failed).

    ``providers``: the plugin that registered each item, keyed ``"query:NAME"``, ``"sensor:NAME"``,
    ``"family:NAME"``, ``"modality:NAME"``.
    """

    query_kinds: dict[str, QueryKind] = attrs.Factory(dict)
    sensors: dict[str, Sensor] = attrs.Factory(dict)
    families: dict[str, Family] = attrs.Factory(dict)
    modalities: dict[str, Modality] = attrs.Factory(dict)
    plugins: list[PluginStatus] = attrs.Factory(list)
    providers: dict[str, PluginStatus] = attrs.Factory(dict)

    def resolve(self, names: list[str], file: str = "spec") -> list[Modality]:
        """Modalities for ``names`` in that order (the order is the modality id).

        Raises ``SpecError`` ``FILE: modalities[i]: unknown modality ...`` (one line) with the closest installed name,
        the installed plugins that are broken and may provide it, and the installed ones.
        """
        out = []
        for i, name in enumerate(names):
            if name not in self.modalities:
                installed = sorted(self.modalities)
                own = any(e.concerns(name) for p in self.plugins for e in p.errors)  # its own error says it all
                closest = "" if own else _closest(name, installed)
                raise SpecError(f"{file}: modalities[{i}]: unknown modality {name!r}{closest}"
                                f"{self.broken_hint(name)}; installed: {', '.join(installed)}")  # fmt: skip
            out.append(self.modalities[name])
        return out

    def broken_hint(self, modality: str = "") -> str:
        """``; plugin P (distribution D V) is installed but broken: ERROR`` for the plugins whose failed modality file
        is ``modality``; else for every plugin that failed as a whole (its modalities are unknown); else ""."""
        about = [(p, [e.message for e in p.errors if modality and e.concerns(modality)]) for p in self.plugins]
        if any(errors for _, errors in about):
            return "".join(f"; {p.describe()} is installed but broken: {'; '.join(errors)}" for p, errors in about
                           if errors)  # fmt: skip
        failed = [(p, [e.message for e in p.errors if e.kind == "plugin"]) for p in self.plugins]
        return "".join(f"; {p.describe()} is installed but broken (it may provide it): {'; '.join(errors)}"
                       for p, errors in failed if errors)  # fmt: skip

    def sensor(self, name: str) -> Sensor:
        """The sensor called ``name``; ``KeyError`` with the closest and installed names, and broken plugins."""
        if name not in self.sensors:
            installed = sorted(self.sensors)
            raise KeyError(f"unknown sensor {name!r}{_closest(name, installed)}{self.broken_hint()}; installed: "
                           f"{', '.join(installed)}")  # fmt: skip
        return self.sensors[name]


def _closest(name: str, installed: list[str]) -> str:
    close = difflib.get_close_matches(name, installed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
