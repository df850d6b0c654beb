"""Resident memory after many conversations, and how fast it grows.

The soak's rig without its faults (bench/soak.py): the real daemon, tuned as `pivox run`
tunes it, holds back-to-back conversations with the reference server (same process) for
MEASURE_S, each the demo question and a spoken reply. RSS is read after WARM
conversations and at the end; the growth per conversation, projected over an hour of
conversations at this pace, gives the hour-equivalent figure `rss_mb`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from pathlib import Path
from typing import Any

from pivox import allocator

MEASURE_S = 70.0
GAP_S = 3.0  # quiet between questions: enough for the turn to end
WARM = 3  # conversations before the first reading: caches and pools fill on the first few


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(seconds: float = MEASURE_S) -> dict[str, Any]:
    from bench.soak import Soak, rss_mb

    class Warm(Soak):
        warm: tuple[int, float] | None = None

        def observe(self, kind: str, data: dict[str, Any]) -> None:
            super().observe(kind, data)
            if self.warm is None and self.conversations.completed >= WARM:
                self.warm = (self.conversations.completed, rss_mb())

    allocator.tune()
    with tempfile.TemporaryDirectory(prefix="pivox-memory-") as tmp:
        soak = Warm(seconds / 60, 1, GAP_S, 1.0, Path(tmp), _free_port(), faults=False)
        f = asyncio.run(soak.run())
    done = f["conversations_completed"]
    warm_n, start = soak.warm or (1, f["rss_start_mb"])
    end = f["rss_end_mb"]
    per_conv = (end - start) / max(1, done - warm_n)
    per_hour = 3600 / (seconds / max(1, done))
    return {
        "rss_mb": round(end + per_conv * max(0.0, per_hour - done), 1),
        "rss_measured_mb": end,
        "rss_warm_mb": round(start, 1),
        "rss_growth_mb_per_100_conversations": round(per_conv * 100, 2),
        "memory_conversations": done,
        "how": f"daemon + reference server in one process, {done} conversations back to back "
               f"in {seconds:.0f} s, no faults; rss_mb = RSS at the end plus the measured "
               f"growth per conversation projected to an hour at this pace "
               f"({per_hour:.0f} conversations)",
    }


if __name__ == "__main__":
    print(json.dumps(run()))
