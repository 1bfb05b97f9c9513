"""What the plugins registered: sensors and modalities, with lookups that suggest the closest match."""

from __future__ import annotations

import difflib

import attrs

from .modality import Family, Modality, Sensor
from .spec import SpecError


@attrs.define
class PluginStatus:
    """One loaded (or failed) plugin: its name, distribution==version, source and error, if any."""

    name: str
    distribution: str
    version: str
    source: str
    error: str = ""


@attrs.define
class Registry:
    """Sensors, model families and modalities by name, plus the status of every plugin that contributed (or failed)."""

    sensors: dict[str, Sensor] = attrs.Factory(dict)
    families: dict[str, Family] = attrs.Factory(dict)
    modalities: dict[str, Modality] = attrs.Factory(dict)
    plugins: list[PluginStatus] = attrs.Factory(list)

    def resolve(self, names: list[str], file: str = "spec") -> list[Modality]:
        """Modalities for ``names`` in that order (the order is the modality id).

        Raises ``SpecError`` ``FILE: modalities[i]: unknown modality ...`` listing the installed ones and the closest.
        """
        out = []
        for i, name in enumerate(names):
            if name not in self.modalities:
                installed = sorted(self.modalities)
                close = difflib.get_close_matches(name, installed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise SpecError(
                    f"{file}: modalities[{i}]: unknown modality {name!r}{hint}; installed: {', '.join(installed)}"
                )
            out.append(self.modalities[name])
        return out

    def sensor(self, name: str) -> Sensor:
        """The sensor called ``name``; ``KeyError`` with the installed names otherwise."""
        if name not in self.sensors:
            raise KeyError(f"unknown sensor {name!r}; installed: {', '.join(sorted(self.sensors))}")
        return self.sensors[name]
