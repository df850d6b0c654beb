"""scripts/bench [PART ...] [--json]: run benchmark parts and print their figures.

Parts: idle, link, echo, latency, memory, budget. Figures are printed with how they were
measured and the load averages around them; nothing is asserted. The options shorten the
long parts (the test suite's quick check); the defaults are what the README reports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
from pathlib import Path

PARTS = ("idle", "link", "echo", "latency", "memory", "budget")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _machine() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("model name")), platform.machine())
    cores = sum(ln.startswith("processor") for ln in info.splitlines())
    return f"{model}, {cores} cores, {platform.platform(terse=True)}, " \
           f"Python {platform.python_version()}"


def main() -> None:
    p = argparse.ArgumentParser(prog="scripts/bench")
    p.add_argument("parts", nargs="*", metavar="PART",
                   help=f"one or more of {', '.join(PARTS)} (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--idle-seconds", type=float, help="idle: seconds measured (120)")
    p.add_argument("--conversations", type=int, help="memory: conversations (200)")
    p.add_argument("--idle-minutes", type=float, help="memory: minutes of idle after (60)")
    p.add_argument("--quotas", help="budget: comma-separated quotas in %% to search")
    args = p.parse_args()
    unknown = [x for x in args.parts if x not in PARTS]
    if unknown:
        p.error(f"unknown part {unknown[0]!r}: choose from {', '.join(PARTS)}")
    options: dict[str, dict[str, object]] = {
        "idle": {"seconds": args.idle_seconds},
        "memory": {"conversations": args.conversations, "idle_minutes": args.idle_minutes},
        "budget": {"quotas": tuple(float(q) for q in args.quotas.split(","))
                   if args.quotas else None},
    }
    figures: dict[str, object] = {
        "bench_date": time.strftime("%Y-%m-%d %H:%M"),
        "bench_machine": _machine(),
    }
    how: dict[str, str] = {}
    for part in args.parts or PARTS:
        started, before = time.monotonic(), _loadavg()
        kw = {k: v for k, v in options.get(part, {}).items() if v is not None}
        result = importlib.import_module(f"bench.{part}").run(**kw)
        how[part] = result.pop("how", "")
        figures.update(result)
        figures[f"{part}_bench_s"] = round(time.monotonic() - started, 1)
        figures[f"{part}_loadavg"] = f"{before} -> {_loadavg()}"
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
