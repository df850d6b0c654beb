"""scripts/bench [PART ...] [--json]: run benchmark parts and print their figures.

Parts: idle, link, echo, latency, memory. Figures are printed with how they were measured;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time

PARTS = ("idle", "link", "echo", "latency", "memory")


def main() -> None:
    p = argparse.ArgumentParser(prog="scripts/bench")
    p.add_argument("parts", nargs="*", metavar="PART",
                   help=f"one or more of {', '.join(PARTS)} (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    unknown = [x for x in args.parts if x not in PARTS]
    if unknown:
        p.error(f"unknown part {unknown[0]!r}: choose from {', '.join(PARTS)}")
    figures: dict[str, object] = {}
    how: dict[str, str] = {}
    for part in args.parts or PARTS:
        started = time.monotonic()
        result = importlib.import_module(f"bench.{part}").run()
        how[part] = result.pop("how", "")
        figures.update(result)
        figures[f"{part}_bench_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps({**figures, "how": how}))
        return
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    for part, text in how.items():
        print(f"\n{part}: {text}")


if __name__ == "__main__":
    main()
