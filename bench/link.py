"""Link figures over real websockets, against the reference server, on the real session.

reconnect: the server is stopped and started again on the same port, repeatedly, while the
link streams microphone frames; measured from the server being back to the first audio
frame it accepts, and, separately, how much of that was the backoff sleep still running.
goaway: the server sends goAway on every connection, 100 times, while numbered frames
stream through a relay that delays each byte 10 ms each way (a close handshake then takes
a round trip, as on a real network); every frame must arrive once, in order.
outages: the server away 10 s and 60 s behind an unchanged network (server_back_to_link_ms);
the speaker's network away as long, in a network namespace, with and without NetWatch
telling the link (network_back_to_link_ms, network_back_no_netwatch_ms).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivox import config
from pivox.core import events as ev
from pivox.hw.netwatch import NetWatch
from pivox.link import codec as lc
from pivox.link.options import setup_options
from pivox.link.session import LiveSession, policy_for
from pivox.reference.server import LIVE_PATH, Faults, ReferenceServer

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
    """The numbered 640-byte frames the server received, in order (several a message)."""
    out: list[int] = []
    for m in server.received:
        if "audio" in m.get("realtimeInput", {}):
            data = lc.b64decode_any(m["realtimeInput"]["audio"]["data"])
            out += [struct.unpack("<I", data[i : i + 4])[0] for i in range(0, len(data), 640)]
    return out


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


# ------------------------------------------------------------------ outages


def _ups(events: list[object]) -> int:
    return sum(isinstance(e, ev.LinkUp) for e in events)


async def _back(events: list[object], since: int, timeout: float) -> float | None:
    """Milliseconds until the link is up again (None: not within `timeout`)."""
    t0 = time.monotonic()
    if not await until(lambda: _ups(events) > since, timeout):
        return None
    return round((time.monotonic() - t0) * 1000, 1)


async def server_outage(outage_s: float, link: str = "", **policy: Any) -> dict[str, Any]:
    """The server goes away for `outage_s` behind an unchanged network, then returns:
    how long until the link is up again (no network event; the probe finds it)."""
    port = _port()
    server = ReferenceServer(port=port)
    await server.start()
    events: list[object] = []
    session = session_for(server.url, events, link, **policy)
    task = asyncio.create_task(session.run())
    session.want(True)
    try:
        await until(lambda: _ups(events) == 1, 5)
        await server.stop()
        await until(lambda: any(isinstance(e, ev.LinkDown) for e in events), 10)
        await asyncio.sleep(outage_s)
        server = ReferenceServer(port=port)
        await server.start()
        ups = _ups(events)
        took = await _back(events, ups, 60)
    finally:
        await session.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()
    return {"outage_s": outage_s, "back_ms": took, "attempts": session.policy.attempts,
            "probes": session.policy.probes}


def _ip(cmd: str) -> None:
    subprocess.run(["ip", *cmd.split()], check=True, capture_output=True)


class Ceiling(random.Random):
    """Every draw at its upper bound: the longest backoff, jitter and spread (for tests)."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def network_outage(outage_s: float, *, stale: bool = False, control: bool = True,
                         link: str = "", ceiling: bool = False) -> dict[str, Any]:
    """In a network namespace of its own (run under `unshare --net`): the speaker's address
    goes for `outage_s` and comes back. One session hears of it through NetWatch, a
    control session (if `control`) does not. With `stale` the links are not told of the
    outage (their sockets go quiet); otherwise the server drops them first, so they spend
    the outage failing and backing off. Times are from the address's return."""
    _ip("link set lo up")
    _ip("link add pvx0 type veth peer name pvx1")
    _ip("link set pvx0 up")
    _ip("link set pvx1 up")
    _ip("addr add 10.77.0.1/24 dev pvx0")
    server = ReferenceServer(host="0.0.0.0")
    await server.start()
    url = f"ws://10.77.0.1:{server.port}{LIVE_PATH}"
    extra = f"allow_insecure = true\n{link}"
    names = ("watched", "control") if control else ("watched",)
    events: dict[str, list[object]] = {n: [] for n in names}
    sessions = {n: session_for(url, events[n], extra, rng=Ceiling() if ceiling else None)
                for n in names}
    watch = NetWatch(lambda reason: sessions["watched"].network_changed())
    tasks = [asyncio.create_task(s.run()) for s in sessions.values()]
    tasks.append(asyncio.create_task(watch.run()))
    for s in sessions.values():
        s.want(True)
    try:
        await until(lambda: all(_ups(e) == 1 for e in events.values()), 5)
        if not stale:
            port = server.port
            await server.stop()
            await until(lambda: all(any(isinstance(x, ev.LinkDown) for x in e)
                                    for e in events.values()), 10)
        _ip("addr del 10.77.0.1/24 dev pvx0")
        if not stale:
            server = ReferenceServer(host="0.0.0.0", port=port)
            await server.start()
        await asyncio.sleep(outage_s)
        ups = {n: _ups(e) for n, e in events.items()}
        _ip("addr add 10.77.0.1/24 dev pvx0")
        backs = await asyncio.gather(*(_back(events[n], ups[n], 40) for n in names))
    finally:
        for s in sessions.values():
            await s.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.stop()
        _ip("link del pvx0")
    out: dict[str, Any] = {"outage_s": outage_s, "netwatch": watch.snapshot().changes}
    for n, took in zip(names, backs, strict=True):
        out[f"{n}_back_ms"] = took
        out[f"{n}_attempts"] = sessions[n].policy.attempts
    return out


def in_netns(argv: list[str]) -> list[dict[str, Any]] | None:
    """Run `network_outage` in a fresh network namespace (root and unshare needed): the
    results, or None when namespaces are not permitted here."""
    cmd = ["unshare", "--net", sys.executable, "-m", "bench.link", "--in-netns", *argv]
    root = Path(__file__).resolve().parent.parent
    # a key is required off loopback; the reference server takes any
    env = {**os.environ, "GEMINI_API_KEY": "reference-server-takes-any-key"}
    try:
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                             timeout=300)
    except FileNotFoundError:
        return None
    if res.returncode != 0:
        if "unshare" in res.stderr and "Operation not permitted" in res.stderr:
            return None
        raise RuntimeError(f"network namespace run failed: {res.stderr[-2000:]}")
    return list(json.loads(res.stdout.strip().splitlines()[-1]))


async def outages() -> dict[str, Any]:
    """10 s and 60 s outages: the server's (no network event) in this process, the
    network's (with and without NetWatch) in a namespace, side by side."""
    netns = asyncio.create_task(asyncio.to_thread(in_netns, ["10", "60"]))
    server = await asyncio.gather(server_outage(10), server_outage(60))
    net = await netns
    out: dict[str, Any] = {
        "server_back_to_link_ms": {f"{r['outage_s']:g}s": r["back_ms"] for r in server},
        "server_outage_attempts": {f"{r['outage_s']:g}s": r["attempts"] for r in server},
    }
    if net is None:
        out["network_back_to_link_ms"] = "not measured: no network namespace here"
        return out
    out["network_back_to_link_ms"] = {f"{r['outage_s']:g}s": r["watched_back_ms"] for r in net}
    out["network_back_no_netwatch_ms"] = {f"{r['outage_s']:g}s": r["control_back_ms"]
                                          for r in net}
    return out


def run() -> dict[str, Any]:
    out = asyncio.run(reconnect())
    out.update(asyncio.run(goaway()))
    out.update(asyncio.run(outages()))
    out["how"] = ("loopback websockets; server stopped and restarted 12 times (0.1-0.6 s "
                  "outages) while 20 ms frames stream; goAway on every connection "
                  f"({HANDOVERS} handovers, 0.5 s left) during numbered 20 ms frames through a "
                  "relay adding 10 ms each way; outages of 10 s and 60 s with default [link] "
                  "settings (probe_s 3, reconnect_spread_s 2): the server's (stopped, network "
                  "unchanged), and the network's in a namespace (the server drops the link, "
                  "the address goes, comes back; one session told by NetWatch, one not), "
                  "timed from the return to the next setupComplete")
    return out


def _main(argv: list[str]) -> None:
    if argv[:1] != ["--in-netns"]:
        print(json.dumps(run()))
        return
    p = argparse.ArgumentParser(prog="bench.link --in-netns")
    p.add_argument("outages", nargs="+", type=float)
    p.add_argument("--stale", action="store_true")
    p.add_argument("--no-control", action="store_true")
    p.add_argument("--link", default="", help="extra [link] lines")
    p.add_argument("--ceiling", action="store_true", help="every random draw at its maximum")
    args = p.parse_args(argv[1:])

    async def each() -> list[dict[str, Any]]:
        return [await network_outage(o, stale=args.stale, control=not args.no_control,
                                     link=args.link.replace(";", "\n"), ceiling=args.ceiling)
                for o in args.outages]

    print(json.dumps(asyncio.run(each())))


if __name__ == "__main__":
    _main(sys.argv[1:])
