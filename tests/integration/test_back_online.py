"""Back online soon after the network or the server returns, on the real session.

The network cases run `bench.link --in-netns` under `unshare --net`: a namespace of the
test's own with a veth pair, the reference server and the links inside it, and NetWatch
reading the kernel's rtnetlink news there. The server cases need no namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from live import wait_for

from pivox import config
from pivox.core import events as ev
from pivox.link.options import setup_options
from pivox.link.session import LiveSession, policy_for
from pivox.reference.server import ReferenceServer

ROOT = Path(__file__).resolve().parents[2]


def in_netns(*args: str) -> dict[str, Any]:
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces not permitted here: {probe.stderr.strip()}")
    env = {**os.environ, "GEMINI_API_KEY": "reference-server-takes-any-key"}
    res = subprocess.run(["unshare", "--net", sys.executable, "-m", "bench.link", "--in-netns",
                          *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    (out,) = json.loads(res.stdout.strip().splitlines()[-1])
    return dict(out)


def test_the_link_is_back_within_1_5_s_of_the_address_return() -> None:
    # No probe, and every backoff at its ceiling: without the network event the link would
    # wait until 15.5 s after it went down (0.5 + 1 + 2 + 4 + 8), 7 s after the return.
    out = in_netns("8", "--no-control", "--ceiling", "--link", "probe_s = 0")
    assert out["netwatch"] >= 1, "NetWatch saw no address appear"
    assert out["watched_back_ms"] is not None and out["watched_back_ms"] <= 1500, out
    assert out["watched_attempts"] <= 12, out  # no hot loop while the network was away


def test_an_idle_link_on_a_silent_socket_is_replaced_when_the_address_returns() -> None:
    out = in_netns("2", "--stale", "--no-control")
    assert out["watched_back_ms"] is not None and out["watched_back_ms"] <= 1500, out


class Speaker:
    """One LiveSession with its events timed."""

    def __init__(self, url: str, seed: int, link: str) -> None:
        cfg = config.parse(f'[link]\nurl = "{url}"\n{link}\n')
        self.events: list[tuple[float, object]] = []
        self.session = LiveSession(cfg.link, setup_options(cfg), 20,
                                   lambda e: self.events.append((time.monotonic(), e)),
                                   policy=policy_for(cfg.link, rng=random.Random(seed)))
        self.task = asyncio.create_task(self.session.run())
        self.session.want(True)

    def ups(self, after: float = 0.0) -> list[float]:
        return [t for t, e in self.events if isinstance(e, ev.LinkUp) and t > after]

    def down(self) -> bool:
        return any(isinstance(e, ev.LinkDown) for _, e in self.events)

    async def stop(self) -> None:
        await self.session.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def outage(n: int, outage_s: float, link: str) -> tuple[list[Speaker], float, float]:
    """`n` speakers up; the server stops for `outage_s` and starts again on its port.
    Returns the speakers, when it stopped and when it was back."""
    server = ReferenceServer()
    await server.start()
    port = server.port
    speakers = [Speaker(server.url, i, link) for i in range(n)]
    try:
        assert await wait_for(lambda: all(s.ups() for s in speakers), 10)
        stopped = time.monotonic()
        await server.stop()
        assert await wait_for(lambda: all(s.down() for s in speakers), 10)
        await asyncio.sleep(outage_s)
        server = ReferenceServer(port=port)
        await server.start()
        back = time.monotonic()
        await wait_for(lambda: all(s.ups(back) for s in speakers), 15)
    finally:
        for s in speakers:
            await s.stop()
        await server.stop()
    return speakers, stopped, back


def test_a_server_back_behind_an_unchanged_network_is_found_within_the_probe_period() -> None:
    probe_s, spread_s = 1.5, 0.5
    (speaker,), _, back = asyncio.run(outage(1, 8.0, f"probe_s = {probe_s}\n"
                                             f"reconnect_spread_s = {spread_s}"))
    (up, *_) = speaker.ups(back)
    assert up - back <= probe_s + spread_s + 0.5, up - back  # the backoff had grown to 8 s
    assert speaker.session.policy.probes >= 3


def test_twenty_speakers_come_back_spread_over_the_window_and_none_early() -> None:
    probe_s, spread_s, outage_s = 1.0, 2.0, 6.0
    speakers, stopped, back = asyncio.run(outage(20, outage_s, f"probe_s = {probe_s}\n"
                                                 f"reconnect_spread_s = {spread_s}"))
    assert not any(s.ups(stopped) and s.ups(stopped)[0] < back for s in speakers)
    firsts = sorted(s.ups(back)[0] - back for s in speakers)
    assert len(firsts) == 20
    assert firsts[-1] <= probe_s + spread_s + 1.0, firsts
    assert firsts[-1] - firsts[0] >= 0.75 * spread_s, firsts  # spread, not a stampede
    assert sum(t < 0.25 for t in firsts) <= 6, firsts
    for s in speakers:  # no hot loop: a handful of attempts and about a probe a second
        assert s.session.policy.attempts <= 10, s.session.policy.attempts
        assert s.session.policy.probes <= outage_s / probe_s + 3, s.session.policy.probes
