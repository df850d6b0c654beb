"""Link figures over real websockets on loopback, against the reference server.

reconnect: the server is stopped and started again on the same port, repeatedly, while the
link streams microphone frames; measured from the server being back to the first audio
frame it accepts, and, separately, how much of that was the backoff sleep still running.
goaway: the server sends goAway mid-stream; the link switches connection; every numbered
microphone frame must arrive once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import struct
import time
from typing import Any

from pivox import config
from pivox.adapters import setup_options
from pivox.core import events as ev
from pivox.link import codec as lc
from pivox.link.session import LiveSession
from pivox.reference.server import Faults, ReferenceServer


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(url: str, events: list) -> LiveSession:
    cfg = config.parse(f'[link]\nurl = "{url}"\n')
    session = LiveSession(cfg.link, setup_options(cfg), 20, events.append)
    session.backoff.stable_s = 1.0  # each blip follows a stable connection, as at home
    return session


def _audio_count(server: ReferenceServer) -> int:
    return sum("audio" in m.get("realtimeInput", {}) for m in server.received)


async def _until(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.002)
    return False


async def reconnect(rounds: int = 12) -> dict[str, Any]:
    port = _port()
    server = ReferenceServer(port=port)
    await server.start()
    events: list = []
    session = _session(server.url, events)
    task = asyncio.create_task(session.run())
    session.want(True)
    n = 0

    async def mic() -> None:
        nonlocal n
        while True:
            session.send_audio(struct.pack("<I", n) + bytes(636))
            n += 1
            await asyncio.sleep(0.02)

    feeder = asyncio.create_task(mic())
    totals, excess = [], []
    rng = random.Random(3)
    try:
        await _until(lambda: _audio_count(server) > 5, 5)
        for _ in range(rounds):
            await asyncio.sleep(1.2)  # stable long enough for the backoff to reset
            downs = sum(isinstance(e, ev.LinkDown) for e in events)
            await server.stop()
            await _until(lambda d=downs: sum(isinstance(e, ev.LinkDown) for e in events) > d,
                         10)
            await asyncio.sleep(rng.uniform(0.1, 0.6))  # the outage
            server = ReferenceServer(port=port)
            await server.start()
            back = time.monotonic()
            await _until(lambda s=server: _audio_count(s) > 0, 40)
            took = time.monotonic() - back
            totals.append(took * 1000)
            excess.append(max(0.0, took - max(0.0, session.retry_at - back)) * 1000)
    finally:
        feeder.cancel()
        await session.close()
        task.cancel()
        await asyncio.gather(task, feeder, return_exceptions=True)
        await server.stop()
    totals.sort()
    excess.sort()
    p95 = totals[max(0, round(0.95 * len(totals)) - 1)]
    return {
        "reconnect_p50_ms": round(totals[len(totals) // 2], 1),
        "reconnect_p95_ms": round(p95, 1),
        "reconnect_beyond_backoff_p95_ms": round(
            excess[max(0, round(0.95 * len(excess)) - 1)], 1),
        "reconnect_rounds": rounds,
    }


async def goaway(seconds: float = 4.0) -> dict[str, Any]:
    server = ReferenceServer(faults=Faults(goaway_after_s=1.0, goaway_time_left_s=3.0))
    await server.start()
    events: list = []
    session = _session(server.url, events)
    task = asyncio.create_task(session.run())
    session.want(True)
    await _until(lambda: any(isinstance(e, ev.LinkUp) for e in events), 5)
    sent, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        session.send_audio(struct.pack("<I", sent) + bytes(636))
        sent += 1
        await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
    await _until(lambda: _audio_count(server) >= sent, 3)
    got = [struct.unpack("<I", lc.b64decode_any(m["realtimeInput"]["audio"]["data"])[:4])[0]
           for m in server.received if "audio" in m.get("realtimeInput", {})]
    await session.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await server.stop()
    return {
        "goaway_frames_lost": sent - len(set(got)),
        "goaway_frames_out_of_order": sum(b < a for a, b in itertools.pairwise(got)),
        "goaway_connections": server.stats.connections,
    }


def run() -> dict[str, Any]:
    out = asyncio.run(reconnect())
    out.update(asyncio.run(goaway()))
    out["how"] = ("loopback websockets; server stopped and restarted 12 times (0.1-0.6 s "
                  "outages) while 20 ms frames stream; goAway with 3 s left during 4 s of "
                  "numbered frames")
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
