"""scripts/soak --minutes N [--seed S] [--json]: conversations for N minutes, under faults.

Prints crashes, hangs, memory, the daemon's audio counters, conversations attempted and
completed, and faults injected by type (bench/soak/__init__.py says which module does what).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import random
import socket
import sys
import tempfile
from pathlib import Path

from bench.soak.report import render
from bench.soak.rig import Soak
from pivox import allocator


class _Counting(logging.Handler):
    """Counts warnings and errors by logger, for the report's `logged`."""

    def __init__(self, soak: Soak) -> None:
        super().__init__(logging.WARNING)
        self.soak = soak

    def emit(self, record: logging.LogRecord) -> None:
        self.soak.logged[f"{record.levelname.lower()}:{record.name}"] += 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, required=True, help="how long to run")
    p.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: random)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--gap", type=float, default=4.0,
                   help="seconds of quiet between repetitions of the recording (default 4)")
    p.add_argument("--keep-warm", type=float, default=1.0,
                   help="conversation.keep_warm_s: short, so most conversations open a new "
                        "connection and meet the fault set for it (default 1)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--log-level", default="error",
                   help="daemon and server log level on stderr (default error)")
    args = p.parse_args(argv)
    if args.minutes <= 0:
        p.error("--minutes must be positive")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    allocator.tune()  # as `pivox run` does: the soak measures the daemon as it ships
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="pivox-soak-") as tmp:
        soak = Soak(args.minutes, seed, args.gap, args.keep_warm, Path(tmp),
                    args.port or _free_port())
        counting = _Counting(soak)
        root = logging.getLogger()
        root.addHandler(counting)
        root.setLevel(min(logging.WARNING, root.level))
        for h in root.handlers:
            if h is not counting:
                h.setLevel(level)
        figures = asyncio.run(soak.run())
        soak.daemon = soak.server = None  # let the audio objects go before the interpreter
        gc.collect()
    print(json.dumps(figures) if args.json else render(figures))
    return 1 if figures["crashes"] or figures["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
