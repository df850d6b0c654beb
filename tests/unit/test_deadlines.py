"""The daemon's deadlines task: a reply's chunks push the speaking deadline later without
waking it each time, yet it still ends the turn when the audio stops, and a deadline
brought sooner still wakes it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from pivox import config
from pivox.core import events as ev
from pivox.core import machine as mc
from pivox.daemon.main import Daemon

GAP_S = 0.4


class Runner:
    def __init__(self) -> None:
        self.done: list[tuple[float, ev.Action]] = []

    def do(self, action: ev.Action) -> None:
        self.done.append((asyncio.get_running_loop().time(), action))

    def when(self, kind: type) -> list[float]:
        return [t for t, a in self.done if isinstance(a, kind)]


def daemon(tmp: Path) -> tuple[Daemon, Runner]:
    path = tmp / "pivox.toml"
    path.write_text(f'[control]\nsocket = "{tmp / "control.sock"}"\n')
    d = Daemon(config.load(path))
    d.timings = dataclasses.replace(d.timings, reply_gap_s=GAP_S)
    runner = Runner()
    d._runner = runner  # type: ignore[assignment]
    d._changed = asyncio.Event()
    return d, runner


def test_a_reply_that_keeps_coming_is_not_cut_and_one_that_stops_is_finished(
        tmp_path: Path) -> None:
    async def go() -> tuple[list[float], float]:
        d, runner = daemon(tmp_path)
        loop = asyncio.get_running_loop()
        d.m = dataclasses.replace(d.m, state=mc.State.THINKING, deadline=loop.time() + 60)
        task = asyncio.create_task(d._deadlines())
        try:
            for _ in range(12):  # 1.2 s of chunks, three gaps' worth
                d.post(ev.AudioOut(bytes(960)))
                await asyncio.sleep(0.1)
            last = loop.time() - 0.1
            while not runner.when(ev.FinishPlayback) and loop.time() < last + 10:
                await asyncio.sleep(0.02)
            return runner.when(ev.FinishPlayback), last
        finally:
            task.cancel()

    finished, last = asyncio.run(go())
    assert finished, "the turn was never finished after its audio stopped"
    assert finished[0] >= last + GAP_S - 0.01  # not at a deadline since pushed later


def test_a_deadline_brought_sooner_wakes_the_task(tmp_path: Path) -> None:
    async def go() -> tuple[list[float], float]:
        d, runner = daemon(tmp_path)
        loop = asyncio.get_running_loop()
        d.m = dataclasses.replace(d.m, state=mc.State.THINKING, deadline=loop.time() + 60)
        task = asyncio.create_task(d._deadlines())
        try:
            await asyncio.sleep(0.05)  # the task waits for the far deadline
            t0 = loop.time()
            d.post(ev.AudioOut(bytes(960)))  # speaking: the deadline is now GAP_S away
            while not runner.when(ev.FinishPlayback) and loop.time() < t0 + 10:
                await asyncio.sleep(0.02)
            return runner.when(ev.FinishPlayback), t0
        finally:
            task.cancel()

    finished, t0 = asyncio.run(go())
    assert finished and finished[0] < t0 + 5, "the sooner deadline did not wake the task"
