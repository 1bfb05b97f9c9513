"""``gmn-plugins list [--json]``: the installed modalities and plugins."""

from __future__ import annotations

import argparse
import json

from ..plugins import load_registry


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gmn-plugins", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="one row per modality (and per broken plugin)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    rows = _rows(load_registry())
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = ("name", "sensor", "shape", "query", "distribution", "status")
    table = [[str(tuple(r[c])) if c == "shape" else str(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())


if __name__ == "__main__":
    main()
