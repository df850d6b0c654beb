"""Link figures over real websockets, against the reference server, on the real session.

reconnect: the server is stopped and started again on the same port, repeatedly, while the
link streams microphone frames; measured from the server being back to the first audio
frame it accepts, and, separately, how much of that was the backoff sleep still running.
goaway: the server sends goAway on every connection, 100 times, while numbered frames
stream through a relay that delays each byte 10 ms each way (a close handshake then takes
a round trip, as on a real network); every frame must arrive once, in order.
outage: see bench/outage.py (server_back_to_link_ms, network_back_to_link_ms).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from pivox import config
from pivox.adapters import setup_options
from pivox.core import events as ev
from pivox.link import codec as lc
from pivox.link.session import LiveSession, policy_for
from pivox.reference.server import Faults, ReferenceServer

HANDOVERS = 100


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_for(url: str, events: list[object], link: str = "", **policy: Any) -> LiveSession:
    cfg = config.parse(f'[link]\nurl = "{url}"\n{link}\n')
    return LiveSession(cfg.link, setup_options(cfg), 20, events.append,
                       policy=policy_for(cfg.link, **policy))


def audio_numbers(server: ReferenceServer) -> list[int]:
    return [struct.unpack("<I", lc.b64decode_any(m["realtimeInput"]["audio"]["data"])[:4])[0]
            for m in server.received if "audio" in m.get("realtimeInput", {})]


def _audio_count(server: ReferenceServer) -> int:
    return sum("audio" in m.get("realtimeInput", {}) for m in server.received)


async def until(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.002)
    return False


class Relay:
    """TCP relay delaying every byte by `one_way_s` each way (a network's round trip)."""

    def __init__(self, upstream_port: int, one_way_s: float) -> None:
        self.upstream_port, self.one_way_s, self.port = upstream_port, one_way_s, 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        with_errors = (ConnectionError, OSError)
        try:
            while data := await src.read(65536):
                loop.call_later(self.one_way_s, dst.write, data)
        except with_errors:
            pass
        loop.call_later(self.one_way_s, dst.close)


async def reconnect(rounds: int = 12) -> dict[str, Any]:
    port = _port()
    server = ReferenceServer(port=port)
    await server.start()
    events: list[object] = []
    # each blip follows a stable connection, as at home
    session = session_for(server.url, events, stable_s=1.0)
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
        await until(lambda: _audio_count(server) > 5, 5)
        for _ in range(rounds):
            await asyncio.sleep(1.2)  # stable long enough for the backoff to reset
            downs = sum(isinstance(e, ev.LinkDown) for e in events)
            await server.stop()
            await until(lambda d=downs: sum(isinstance(e, ev.LinkDown) for e in events) > d,
                        10)
            await asyncio.sleep(rng.uniform(0.1, 0.6))  # the outage
            server = ReferenceServer(port=port)
            await server.start()
            back = time.monotonic()
            waiting = session.snapshot().retry_in_s
            await until(lambda s=server: _audio_count(s) > 0, 40)
            took = time.monotonic() - back
            totals.append(took * 1000)
            excess.append(max(0.0, took - waiting) * 1000)
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


async def goaway(handovers: int = HANDOVERS) -> dict[str, Any]:
    server = ReferenceServer(faults=Faults(connections=0, goaway_after_s=0.05,
                                           goaway_time_left_s=0.5))
    await server.start()
    relay = Relay(server.port, 0.01)
    await relay.start()
    events: list[object] = []
    url = server.url.replace(f":{server.port}/", f":{relay.port}/")
    session = session_for(url, events, "send_buffer_ms = 30000")
    task = asyncio.create_task(session.run())
    session.want(True)
    await until(lambda: any(isinstance(e, ev.LinkUp) for e in events), 5)
    sent, t0 = 0, time.monotonic()
    while server.stats.connections <= handovers and time.monotonic() - t0 < 60:
        session.send_audio(struct.pack("<I", sent) + bytes(636))
        sent += 1
        await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
    await until(lambda: _audio_count(server) >= sent, 5)
    got = audio_numbers(server)
    await session.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    relay.stop()
    await server.stop()
    return {
        "goaway_handovers": server.stats.connections - 1,
        "goaway_frames_sent": sent,
        "goaway_frames_lost": sent - len(set(got)),
        "goaway_frames_duplicated": len(got) - len(set(got)),
        "goaway_frames_out_of_order": sum(b < a for a, b in itertools.pairwise(got)),
        "goaway_linkdowns": sum(isinstance(e, ev.LinkDown) for e in events),
    }


def run() -> dict[str, Any]:
    out = asyncio.run(reconnect())
    out.update(asyncio.run(goaway()))
    out["how"] = ("loopback websockets; server stopped and restarted 12 times (0.1-0.6 s "
                  "outages) while 20 ms frames stream; goAway on every connection "
                  f"({HANDOVERS} handovers, 0.5 s left) during numbered 20 ms frames through a "
                  "relay adding 10 ms each way")
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
