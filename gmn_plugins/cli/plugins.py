"""``gmn-plugins list [--json]`` (the installed modalities and plugins), ``gmn-plugins sensors [NAME] [--json]`` (the
installed sensors, or one sensor with its index names), ``gmn-plugins families [--json]`` and ``gmn-plugins queries
[--json]`` (the installed model families and query kinds), ``gmn-plugins check NAME`` (one real sensor record and the
conformance of the modality's encoder and renderer) and ``gmn-plugins new NAME`` (a plugin package to start from)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..core.plugins import load_registry
from ..core.spec import SpecError
from . import user_errors

COLUMNS = ("name", "sensor", "shape", "query", "family", "distribution", "source", "status")
SENSOR_COLUMNS = ("name", "query", "shape", "dtype", "units", "normalization", "distribution")
FAMILY_COLUMNS = ("name", "dims", "options", "encoder", "renderer", "distribution")
QUERY_COLUMNS = ("name", "dim", "encoded", "units", "poseable", "distribution")


def _provided(registry, key: str) -> str:
    provider = registry.providers.get(key)
    return f"{provider.distribution}=={provider.version}" if provider else "?"


def _family_rows(registry) -> list[dict]:
    """One row per model family: dims, options (name=allowed values; a likelihood option as name=default
    (likelihood)), encoder and renderer (as named: a family's
    classes are imported only when a model is built), distribution, description."""
    def named(ref):
        return ref if isinstance(ref, str) else f"{ref.__module__}:{ref.__qualname__}"

    return [{"name": f.name, "dims": f.dims,
             "options": ", ".join([*(f"{k}={'|'.join(map(str, v))}" for k, v in f.options.items()),
                                   *(f"{k}={v} (likelihood)" for k, v in f.likelihood_options.items())]) or "-",
             "encoder": named(f.encoder), "renderer": named(f.renderer),
             "distribution": _provided(registry, f"family:{f.name}"), "description": f.description}
            for f in sorted(registry.families.values(), key=lambda f: f.name)]  # fmt: skip


def _query_rows(registry) -> list[dict]:
    """One row per query kind: raw and encoded dimension, units, whether it can pose its rig anywhere (generation
    figures), distribution, description."""
    return [{"name": k.name, "dim": k.dim, "encoded": k.encoded_dim, "units": k.units, "poseable": k.can_pose,
             "distribution": _provided(registry, f"query:{k.name}"), "description": k.description}
            for k in registry.query_kinds.values()]  # fmt: skip


def _rows(registry) -> list[dict]:
    """One row per modality, and one per error of a broken plugin (per bad modality file, with its ``spec``)."""
    rows = []
    for m in sorted(registry.modalities.values(), key=lambda m: m.name):
        rows.append({"name": m.name, "sensor": m.sensor.name, "shape": list(m.shape), "query": m.spec.query,
                     "family": m.spec.family, "distribution": f"{m.distribution}=={m.version}", "source": m.source,
                     "spec": m.spec_path, "status": "ok"})  # fmt: skip
    for p in registry.plugins:
        for e in p.errors:
            rows.append({"name": p.name, "sensor": "", "shape": [], "query": "", "family": "",
                         "distribution": f"{p.distribution}=={p.version}", "source": p.source, "spec": e.file,
                         "status": f"broken: {e.message}"})  # fmt: skip
    return rows


def _sensor_row(registry, sensor) -> dict:
    provider = registry.providers.get(f"sensor:{sensor.name}")
    return {"name": sensor.name, "query": sensor.query, "shape": list(sensor.shape), "dtype": sensor.dtype,
            "units": sensor.units, "normalization": sensor.normalization,
            "distribution": f"{provider.distribution}=={provider.version}" if provider else "?",
            "plugin": provider.name if provider else "", "source": provider.source if provider else "",
            "description": sensor.description}  # fmt: skip


def _table(rows: list[dict], columns=COLUMNS) -> str:
    cells = [["x".join(map(str, r[c])) if c == "shape" else str(r[c]) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(t[i]) for t in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in cells]
    return "\n".join(lines)


def _sensor_details(row: dict, sensor) -> str:
    """The sensor's fields, one per line, then each index ``  I  NAME  [lo, hi]`` when it has index names."""
    lines = [f"{key:<14} {'x'.join(map(str, value)) if key == 'shape' else value}" for key, value in row.items()]
    if sensor.index_names:
        ranges = sensor.physical_range or [None] * len(sensor.index_names)
        width = max(map(len, sensor.index_names))
        lines.append(f"{'indices':<14} {len(sensor.index_names)}: index, name" +
                     (", physical range" if sensor.physical_range else ""))  # fmt: skip
        for i, (name, span) in enumerate(zip(sensor.index_names, ranges)):
            extra = f"  [{span[0]:g}, {span[1]:g}]" if span else ""
            lines.append(f"  {i:>3}  {name.ljust(width)}{extra}".rstrip())
    return "\n".join(lines)


def _sensors(registry, name: str | None, as_json: bool) -> None:
    if name is None:
        rows = [_sensor_row(registry, s) for s in sorted(registry.sensors.values(), key=lambda s: s.name)]
        print(json.dumps(rows, indent=2) if as_json else _table(rows, SENSOR_COLUMNS))
        return
    try:
        sensor = registry.sensor(name)
    except KeyError as exc:
        print(f"gmn-plugins sensors: {exc.args[0]}", file=sys.stderr)
        sys.exit(2)
    row = _sensor_row(registry, sensor)
    if as_json:
        physical = sensor.physical_range and [list(span) for span in sensor.physical_range]
        print(json.dumps({**row, "index_names": sensor.index_names and list(sensor.index_names),
                          "physical_range": physical}, indent=2))  # fmt: skip
    else:
        print(_sensor_details(row, sensor))


def _record_problem(sensor, registry) -> str | None:
    """Record one MESE scene of one view with ``sensor`` (its real rig, the default data settings) and say what is
    wrong with the record (``modality.record_problem``, or the scene maker's own check), or None."""
    from ..mese.scene import SceneMaker
    from ..core.modality import record_problem
    from ..core.spec import DataSpec

    data = DataSpec()
    maker = None
    try:
        maker = SceneMaker([sensor], data.blocks, 1, data.physics, kinds=registry.query_kinds)
        maker.make(0, "train", 0)
        return record_problem(sensor, sensor.record(maker.rigs[sensor.query]))
    except ValueError as exc:  # the scene maker's check of every record (SensorRecordError)
        return str(exc).removeprefix(f"sensor {sensor.name}: ")
    except Exception as exc:  # the plugin's record() itself failed
        return f"record() raised {type(exc).__name__}: {exc}"
    finally:
        if maker is not None:
            maker.close()


def _check(registry, name: str, preset: str, record: bool) -> None:
    from ..authoring.conformance import ConformanceError, check_modality

    try:
        modality = registry.resolve([name], "gmn-plugins check")[0]
    except SpecError as exc:
        print(str(exc).replace("modalities[0]: ", ""), file=sys.stderr)
        sys.exit(2)
    sensor = modality.sensor
    if record:
        problem = _record_problem(sensor, registry)
        if problem:
            print(f"FAIL {name}: sensor {sensor.name}: {' '.join(problem.split())}", file=sys.stderr)
            sys.exit(1)
        print(f"ok  sensor {sensor.name}: one MESE record, shape {tuple(sensor.shape)} {sensor.dtype}, finite")
    try:
        for line in check_modality(modality, preset):
            print(f"ok  {line}")
    except ConformanceError as exc:
        print(f"FAIL {name}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"{name}: all checks passed")


def _new(name: str, directory: str, family: bool = False) -> None:
    from ..authoring.scaffold import new_package  # imported here: the other commands need nothing of it

    try:
        path = new_package(name, Path(directory), family)
    except ValueError as exc:
        print(f"gmn-plugins new: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    shown = str(path) if os.path.isabs(path) or str(path).startswith(".") else os.path.join(".", path)
    print(f"created {shown}\nnext steps:\n  pip install {shown}\n  gmn-plugins list")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-plugins", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="one row per modality (and per error of a broken plugin)")
    listing.add_argument("--json", action="store_true", help="machine-readable output, with each spec's path")
    sensors = sub.add_parser("sensors", help="one row per sensor; with NAME, that sensor and its index names")
    sensors.add_argument("name", nargs="?")
    sensors.add_argument("--json", action="store_true", help="machine-readable output")
    for name, text in (("families", "one row per model family"), ("queries", "one row per query kind")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true", help="machine-readable output")
    check = sub.add_parser("check", help="one real record of the modality's sensor, and conformance of its encoder "
                                         "and renderer")  # fmt: skip
    check.add_argument("name")
    check.add_argument("--preset", default="small", choices=("small", "v4"))
    check.add_argument("--skip-record", action="store_true", help="do not record a MESE scene with the sensor")
    new = sub.add_parser("new", help="write a plugin package skeleton DIR/NAME to start from")
    new.add_argument("name")
    new.add_argument("--dir", default=".", help="where to create it (default: the current directory)")
    new.add_argument("--family", action="store_true", help="also a model family (its encoder, renderer, nll and "
                     "draw) for 2-d senses, with a sensor and a modality that use it")
    args = parser.parse_args(argv)
    with user_errors():  # a closed pipe (| head) ends quietly
        if args.command == "new":
            _new(args.name, args.dir, args.family)
            return
        registry = load_registry()
        if args.command == "list":
            rows = _rows(registry)
            print(json.dumps(rows, indent=2) if args.json else _table(rows))
        elif args.command == "sensors":
            _sensors(registry, args.name, args.json)
        elif args.command in ("families", "queries"):
            rows, columns = ((_family_rows(registry), FAMILY_COLUMNS) if args.command == "families"
                             else (_query_rows(registry), QUERY_COLUMNS))  # fmt: skip
            print(json.dumps(rows, indent=2) if args.json else _table(rows, columns))
        else:
            _check(registry, args.name, args.preset, not args.skip_record)


if __name__ == "__main__":
    main()
