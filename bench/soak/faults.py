"""The soak's fault schedule: which fault comes when, and whether it really happened.

After a quiet start (FIRST_FAULT_S, so the first conversations complete undisturbed) one
fault at a time, drawn by weight from a seeded generator so a run can be repeated: the
server stopped or killed and started again after a while, the server's next connection
given a fault (goAway, stall, malformed and oversized frames, a dropped TCP connection, a
1011 close, refused resumption), or the microphone unplugged and plugged back in.
A server-side fault counts as applied only once its connection has opened.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import TYPE_CHECKING

from pivox.reference.server import Faults, ReferenceServer

if TYPE_CHECKING:
    from bench.soak.rig import Soak

FIRST_FAULT_S = (20.0, 30.0)  # let the first conversations complete undisturbed
FAULT_EVERY_S = (8.0, 30.0)
SERVER_DOWN_S = (1.0, 10.0)
MIC_GONE_S = (1.0, 8.0)
LOG_KEPT = 40  # fault lines kept for the report
FAULT_WEIGHTS = {
    "server_restart": 2, "server_kill": 2, "goaway": 2, "stall": 2, "malformed": 2,
    "drop": 2, "close_1011": 1, "refuse_resumption": 1, "mic_removed": 2,
}
log = logging.getLogger("pivox.soak")


def server_faults(kind: str, connection: int, r: random.Random) -> Faults:
    """The reference server's faults for `kind`, on its `connection`-th connection only."""
    n = connection
    if kind == "goaway":
        return Faults(n, goaway_after_s=r.uniform(0.5, 5.0),
                      goaway_time_left_s=r.uniform(6.0, 12.0))
    if kind == "stall":
        return Faults(n, stall_after_s=r.uniform(0.5, 6.0))
    if kind == "malformed":
        return Faults(n, malformed_before_reply=True, oversized_bytes=r.choice((0, 2_000_000)))
    if kind == "drop":
        return Faults(n, drop_after_s=r.uniform(0.5, 6.0))
    if kind == "close_1011":
        return Faults(n, close_after_s=r.uniform(0.5, 6.0))
    if kind == "refuse_resumption":
        return Faults(n, refuse_resumption=True, drop_after_s=r.uniform(0.5, 6.0))
    raise ValueError(f"not a server fault: {kind}")


class FaultSchedule:
    """Injects faults into a running soak and counts them (`injected`, `applied`)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.injected: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()
        self.log: list[str] = []
        self.last = ""  # the latest fault and when, for the memory peak's report
        self._pending: list[tuple[str, ReferenceServer, int]] = []

    async def run(self, soak: Soak) -> None:
        await asyncio.sleep(self.rng.uniform(*FIRST_FAULT_S))
        kinds = list(FAULT_WEIGHTS)
        weights = [FAULT_WEIGHTS[k] for k in kinds]
        while True:
            kind = self.rng.choices(kinds, weights)[0]
            self.injected[kind] += 1
            started = soak.at()
            self.last = f"{kind} at {started:.0f} s"
            log.info("fault at %.0f s: %s", started, kind)
            await self.inject(kind, soak)
            self.log.append(f"{started:.0f}s {kind} ({soak.at() - started:.1f} s)")
            del self.log[:-LOG_KEPT]
            await asyncio.sleep(self.rng.uniform(*FAULT_EVERY_S))

    async def inject(self, kind: str, soak: Soak) -> None:
        r = self.rng
        if kind in ("server_restart", "server_kill"):
            await soak.stop_server(kill=kind == "server_kill")
            await asyncio.sleep(r.uniform(*SERVER_DOWN_S))
            await soak.start_server()
            self.applied[kind] += 1
        elif kind == "mic_removed":
            assert soak.mic is not None
            soak.mic.removed = True
            await asyncio.sleep(r.uniform(*MIC_GONE_S))
            soak.mic.removed = False
            self.applied[kind] += 1
        elif soak.server is not None:
            nxt = soak.server.stats.connections + 1
            soak.server.faults = server_faults(kind, nxt, r)  # read when it next accepts
            self._pending.append((kind, soak.server, nxt))

    def check_applied(self) -> None:
        """Count the pending server faults whose connection has opened by now."""
        still = []
        for kind, server, conn in self._pending:
            if server.stats.connections >= conn:
                self.applied[kind] += 1
            else:
                still.append((kind, server, conn))
        self._pending = still

    def server_gone(self, server: ReferenceServer) -> None:
        """`server` is stopping: its faults that never met a connection never will."""
        self.check_applied()
        self._pending = [p for p in self._pending if p[1] is not server]
