"""``gmn-plugins list [--json]`` (the installed modalities and plugins) and ``gmn-plugins check NAME`` (conformance)."""

from __future__ import annotations

import argparse
import json
import sys

from ..plugins import load_registry
from ..spec import SpecError

COLUMNS = ("name", "sensor", "shape", "query", "family", "distribution", "source", "status")


def _rows(registry) -> list[dict]:
    rows = []
    for m in sorted(registry.modalities.values(), key=lambda m: m.name):
        rows.append({"name": m.name, "sensor": m.sensor.name, "shape": list(m.shape), "query": m.spec.query,
                     "family": m.spec.family, "distribution": f"{m.distribution}=={m.version}", "source": m.source,
                     "spec": m.spec_path, "status": "ok"})  # fmt: skip
    for p in registry.plugins:
        if p.error:
            rows.append({"name": p.name, "sensor": "", "shape": [], "query": "", "family": "",
                         "distribution": f"{p.distribution}=={p.version}", "source": p.source, "spec": "",
                         "status": f"broken: {p.error}"})  # fmt: skip
    return rows


def _table(rows: list[dict]) -> str:
    cells = [["x".join(map(str, r[c])) if c == "shape" else str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(t[i]) for t in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-plugins", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="one row per modality (and per broken plugin)")
    listing.add_argument("--json", action="store_true", help="machine-readable output, with each spec's path")
    check = sub.add_parser("check", help="conformance check of one modality's encoder and renderer")
    check.add_argument("name")
    check.add_argument("--preset", default="small", choices=("small", "v4"))
    args = parser.parse_args(argv)
    registry = load_registry()
    if args.command == "list":
        rows = _rows(registry)
        print(json.dumps(rows, indent=2) if args.json else _table(rows))
        return
    from ..conformance import ConformanceError, check_modality

    try:
        modality = registry.resolve([args.name], "gmn-plugins check")[0]
    except SpecError as exc:
        print(str(exc).replace("modalities[0]: ", ""), file=sys.stderr)
        sys.exit(2)
    try:
        for line in check_modality(modality, args.preset):
            print(f"ok  {line}")
    except ConformanceError as exc:
        print(f"FAIL {args.name}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"{args.name}: all checks passed")


if __name__ == "__main__":
    main()
