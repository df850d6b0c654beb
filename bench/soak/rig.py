"""The soak's rig: the real daemon and the reference server in one loop, watched.

One process, one asyncio loop: the daemon listens to a LoopingMic behind an unpluggable
Microphone and plays into a NullSink, and talks to the bundled reference server on a
fixed loopback port, which the fault schedule stops, kills and restarts.

Watched for: crashes (the daemon task or one of its long-running tasks ending, an
exception no task retrieved, an exception that ended an audio thread) and hangs (no state
change for STATE_HANG_S while microphone frames flow; the loop unresponsive for
LOOP_HANG_S; a stop that does not finish). RSS is read every second.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from bench.soak.devices import LoopingMic, Microphone, NullSink, write_cycle
from bench.soak.faults import FaultSchedule
from bench.soak.report import Conversations, figures, rss_mb
from pivox import config
from pivox.core.formats import MIC_RATE, SAMPLE_BYTES
from pivox.daemon import Daemon
from pivox.reference.server import ReferenceServer

STATE_HANG_S = 60.0  # no state change this long while the microphone delivers: stuck
LOOP_HANG_S = 5.0  # the loop did not run a 50 ms timer for this long: unresponsive
LAG_PERIOD_S = 0.05
SERVER_STOP_S = 5.0
DETAILS = 40  # crash and hang lines kept for the report


# ------------------------------------------------------------------ the daemon's internals
# Everything the soak knows about pivox.daemon's insides is in this block (attributes,
# the status layout), so a change to the daemon changes these lines only. A part that dies
# ends Daemon.run with PartDied (its supervisor's doing): the soak reports that as a crash.

def new_daemon(cfg: config.Config, mic: Microphone, sink_rate: int, observe: Any) -> Daemon:
    daemon = Daemon(cfg, source=mic, sink=lambda: NullSink(sink_rate))
    daemon.observers.append(observe)  # called with ("state", {...}) and ("event", {...})
    return daemon


def mic_frames(daemon: Daemon) -> int:
    return daemon.capture.frames if daemon.capture is not None else 0


def state_name(daemon: Daemon) -> str:
    return daemon.m.state.value


def daemon_counters(status: dict[str, Any]) -> dict[str, Any]:
    """The counters the report prints, from `Daemon.status()`."""
    audio, link = status.get("audio", {}), status.get("link", {})
    return {"dropped_frames": audio.get("dropped_frames", 0),
            "overruns": audio.get("overruns", 0), "underruns": audio.get("underruns", 0),
            "link_audio_dropped_ms": link.get("audio_dropped_ms", 0),
            "mic_frames": audio.get("frames", 0), "state": status.get("state", "")}

# ------------------------------------------------------------------


class Soak:
    def __init__(self, minutes: float, seed: int, gap_s: float, keep_warm_s: float,
                 tmp: Path, port: int, faults: bool = True) -> None:
        self.minutes = minutes
        self.inject_faults = faults
        self.seed = seed
        self.schedule = FaultSchedule(random.Random(seed))
        self.gap_s = gap_s
        self.keep_warm_s = keep_warm_s
        self.tmp = tmp
        self.port = port
        self.server: ReferenceServer | None = None
        self.server_totals: Counter[str] = Counter()
        self.daemon: Daemon | None = None
        self.mic: Microphone | None = None
        self.conversations = Conversations()
        self.states: Counter[str] = Counter()
        self.server_stop_timeouts = 0
        self._abandoned: list[ReferenceServer] = []
        self.crashes = 0
        self.hangs = 0
        self.crash_details: list[str] = []  # the first DETAILS of each, for the report
        self.hang_details: list[str] = []
        self.logged: Counter[str] = Counter()
        self.lag_ms: Counter[int] = Counter()  # a histogram: memory stays flat however long
        self.heartbeat = time.monotonic()
        self.last_change = time.monotonic()
        self._in_hang = False
        self.stopping = False
        self.rss: list[tuple[float, float]] = []
        self.peak: tuple[float, float, str] = (0.0, 0.0, "")  # (at s, MB, the fault before)
        self.rss_start: float | None = None
        self.rss_boot: float | None = None
        self.t0 = time.monotonic()
        self.cycle_s = 0.0
        self.rss_before = rss_mb()

    # -- observation
    def observe(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            self.last_change = time.monotonic()
            self._in_hang = False
            self.states[data["state"]] += 1
            self.conversations.on_state(data["state"], data["t"])
            if data["state"] == "idle" and self.rss_boot is None:
                self.rss_boot = rss_mb()
            if self.conversations.completed and self.rss_start is None:
                self.rss_start = rss_mb()  # warm: a whole conversation has run once
        elif kind == "event" and data.get("name") == "WakeDetected":
            self.conversations.wakes += 1

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        task = context.get("task") or context.get("future")
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        where = f" in {getattr(coro, '__qualname__', '?')}" if coro is not None else ""
        text = f"{context.get('message', '')}{where}"
        if exc is not None:
            text += f": {type(exc).__name__}: {exc}"
        self.crash(f"unhandled exception in the loop at {self.at():.0f} s ({text})", exc)

    def _thread_exception(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        self.crash(f"thread {name} died at {self.at():.0f} s "
                   f"({args.exc_type.__name__}: {args.exc_value})", args.exc_value)

    def crash(self, text: str, exc: BaseException | None = None) -> None:
        self.crashes += 1
        if len(self.crash_details) < DETAILS:
            self.crash_details.append(text)
            print(f"soak: CRASH {text}", file=sys.stderr)
            if exc is not None:
                traceback.print_exception(exc, file=sys.stderr)

    def hang(self, text: str) -> None:
        self.hangs += 1
        if len(self.hang_details) < DETAILS:
            self.hang_details.append(text)
            print(f"soak: HANG {text}", file=sys.stderr)

    def at(self) -> float:
        return time.monotonic() - self.t0

    # -- the server
    async def start_server(self) -> None:
        for attempt in range(40):
            server = ReferenceServer(port=self.port)
            try:
                await server.start()
            except OSError:  # the port is still held by the old one's last sockets
                await asyncio.sleep(0.25 * (attempt + 1))
                continue
            self.server = server
            return
        raise RuntimeError(f"could not listen on port {self.port} again")

    async def stop_server(self, kill: bool) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        self.schedule.server_gone(server)
        for key in ("connections", "setups", "turns", "replies", "interruptions", "resumed",
                    "frames_rejected"):
            self.server_totals[key] += getattr(server.stats, key)
        if kill:  # every connection vanishes at once, with no close frame
            ws_server = getattr(server, "_server", None)
            for conn in list(getattr(ws_server, "connections", ())):
                conn.transport.abort()
        try:
            await asyncio.wait_for(server.stop(), SERVER_STOP_S)
        except TimeoutError:  # its listening socket is closed already: a new one can start
            self.server_stop_timeouts += 1
            self._abandoned.append(server)  # its stuck handler stays referenced, not collected
            print(f"soak: the reference server did not stop within {SERVER_STOP_S:g} s at "
                  f"{self.at():.0f} s (a connection handler is stuck); starting a new one",
                  file=sys.stderr)

    # -- watching
    async def lag_probe(self) -> None:
        loop = asyncio.get_running_loop()
        prev = loop.time()
        while True:
            await asyncio.sleep(LAG_PERIOD_S)
            now = loop.time()
            lag = now - prev - LAG_PERIOD_S
            prev = now
            self.heartbeat = time.monotonic()
            self.lag_ms[max(0, round(lag * 1000))] += 1
            if lag > LOOP_HANG_S:
                self.hang(f"loop unresponsive for {lag:.1f} s at {self.at():.0f} s")

    async def watch(self, daemon_task: asyncio.Task) -> None:
        frames = 0
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            assert self.daemon is not None
            if daemon_task.done() and not self.stopping:
                return
            if self.server is not None:  # the server's record of client messages, kept for
                self.server.received.clear()  # tests to inspect: not the daemon's memory
            now_frames = mic_frames(self.daemon)
            flowing, frames = now_frames > frames, now_frames
            quiet = time.monotonic() - self.last_change
            if flowing and quiet > STATE_HANG_S and not self._in_hang:
                self._in_hang = True
                self.hang(f"state {state_name(self.daemon)} unchanged for {quiet:.0f} s "
                          f"with the microphone delivering, at {self.at():.0f} s")
            rss = rss_mb()
            if rss > self.peak[1]:  # every second: a spike between samples is still seen
                self.peak = (self.at(), rss, self.schedule.last)
            if tick % 10 == 0:
                gc.collect()  # so an exception no task retrieved is reported now
                self.rss.append((self.at(), rss))
                self.schedule.check_applied()
            if tick % 60 == 0:
                c = self.conversations
                print(f"soak: {self.at() / 60:.0f}/{self.minutes:g} min, conversations "
                      f"{c.completed}/{c.attempted} completed, faults "
                      f"{sum(self.schedule.injected.values())}, rss {rss_mb():.0f} MB, state "
                      f"{state_name(self.daemon)}", file=sys.stderr, flush=True)

    def _watchdog_thread(self, deadline: float) -> None:
        """If the loop never comes back, report that and end the process."""
        while time.monotonic() < deadline:
            time.sleep(1.0)
        stale = time.monotonic() - self.heartbeat
        self.hang(f"the soak did not finish: loop silent for {stale:.0f} s")
        print(json.dumps(figures(self, {})), flush=True)
        os._exit(1)

    # -- the whole run
    def config(self) -> config.Config:
        mic = self.tmp / "mic.wav"
        text = f"""
[audio.capture]
device = "wav:{mic}"
realtime = true
[audio.playback]
device = "soak-null"
rate = 48000
[link]
url = "ws://127.0.0.1:{self.port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
[conversation]
keep_warm_s = {self.keep_warm_s}
[control]
socket = "{self.tmp / 'control.sock'}"
"""
        path = self.tmp / "pivox.toml"
        path.write_text(text)
        return config.load(path)

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_exception)
        threading.excepthook = self._thread_exception
        seconds = self.minutes * 60
        cycle = write_cycle(self.tmp / "mic.wav", self.gap_s)
        self.cycle_s = len(cycle) / (SAMPLE_BYTES * MIC_RATE)
        cfg = self.config()
        self.rss_before = rss_mb()
        await self.start_server()
        self.mic = Microphone(lambda: LoopingMic(cycle, cfg.audio.frame_ms))
        self.daemon = daemon = new_daemon(cfg, self.mic, cfg.audio.playback.rate, self.observe)
        stop = asyncio.Event()
        threading.Thread(target=self._watchdog_thread, args=(time.monotonic() + seconds + 120,),
                         name="soak-watchdog", daemon=True).start()
        self.t0 = time.monotonic()
        task = asyncio.create_task(daemon.run(stop))
        helpers = [asyncio.create_task(c) for c in (self.lag_probe(), self.watch(task))]
        if self.inject_faults:
            helpers.append(asyncio.create_task(self.schedule.run(self)))
        done, _ = await asyncio.wait([task], timeout=seconds)
        if done:
            exc = task.exception()
            self.crash(f"the daemon stopped by itself at {self.at():.0f} s "
                       f"({type(exc).__name__ if exc else 'returned'}: {exc})", exc)
        final = daemon_counters(daemon.status())
        rss_end = rss_mb()  # while it still runs, as the start figure was taken
        self.schedule.check_applied()
        self.stopping = True
        for h in helpers:
            h.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        if self.mic is not None:
            self.mic.removed = False
        stop.set()
        if not done:
            try:
                await asyncio.wait_for(task, 20)
            except TimeoutError:
                self.hang("the daemon did not stop within 20 s")
            except Exception as exc:  # reported as a crash; the figures still matter
                self.crash(f"the daemon failed while stopping ({type(exc).__name__}: {exc})",
                           exc)
        await self.stop_server(kill=False)
        gc.collect()
        await asyncio.sleep(0)
        return figures(self, final, rss_end)
