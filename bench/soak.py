"""scripts/soak --minutes N [--seed S] [--json]: conversations for N minutes, under faults.

One process, one asyncio loop: the real daemon listens to a recorded microphone that says
"Okay Nabu. What's the weather like today?" over and over (the demo recording, then a few
seconds of quiet, looped and paced at real time by LoopingMic), and talks to the
bundled reference server on a fixed loopback port. At random intervals the run injects one
fault: the server is stopped or killed and started again, the server's next connection
gets a fault (goAway, stall, malformed and oversized frames, a dropped TCP connection, a
1011 close, refused resumption), or the microphone is removed and restored (the daemon's
source factory raises DeviceError for a while, as ALSA does for an unplugged card).

Reported: crashes (the daemon task or one of its long-running tasks ending, an exception
no task retrieved, an exception that ended an audio thread), hangs (no state change for
STATE_HANG_S while microphone frames flow; the loop unresponsive for LOOP_HANG_S; a stop
that does not finish), RSS at start and end (VmRSS of this process, which also hosts the
server), the daemon's own overrun/underrun/drop counters, conversations attempted and
completed (wake -> speaking -> idle), and faults injected by type. Exit status 1 when
there was a crash or a hang.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import traceback
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pivox import allocator, config
from pivox.audio.base import RATE, AudioSource, DeviceError, frame_bytes
from pivox.audio.wavfile import read_wav
from pivox.daemon import Daemon
from pivox.reference.server import Faults, ReferenceServer

DEMO_MIC = Path(str(resources.files("pivox") / "data" / "demo_mic.wav"))
STATE_HANG_S = 60.0  # no state change this long while the microphone delivers: stuck
LOOP_HANG_S = 5.0  # the loop did not run a 50 ms timer for this long: unresponsive
LAG_PERIOD_S = 0.05
FIRST_FAULT_S = (20.0, 30.0)  # let the first conversations complete undisturbed
FAULT_EVERY_S = (8.0, 30.0)
SERVER_DOWN_S = (1.0, 10.0)
MIC_GONE_S = (1.0, 8.0)
SERVER_STOP_S = 5.0
DETAILS = 40  # crash, hang and fault lines kept for the report
FAULT_WEIGHTS = {
    "server_restart": 2, "server_kill": 2, "goaway": 2, "stall": 2, "malformed": 2,
    "drop": 2, "close_1011": 1, "refuse_resumption": 1, "mic_removed": 2,
}
# The daemon's long-running tasks: any of them ending while it runs is a crash.
CORE_TASKS = {"pivox.link.session.LiveSession.run", "pivox.daemon.Daemon._pump_frames",
              "pivox.daemon.Daemon._deadlines", "pivox.hw.gpio.LedDriver.run"}
CONVERSATION = ("listening", "thinking", "speaking")
log = logging.getLogger("pivox.soak")


# ------------------------------------------------------------------ devices


def write_cycle(path: Path, gap_s: float) -> bytes:
    """The demo recording, then `gap_s` of quiet: one repetition, also written to `path`
    (the configured capture device, for the record)."""
    cycle = read_wav(DEMO_MIC) + bytes(round(gap_s * RATE) * 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(cycle)
    return cycle


class LoopingMic:
    """The recording over and over at real time, a frame when its last sample is due: a
    microphone whose memory does not grow with the soak's length (a whole soak's recording
    read into memory would be 115 MB an hour, and the soak measures the daemon's)."""

    def __init__(self, cycle: bytes, frame_ms: int) -> None:
        self.name = "soak-mic"
        self._cycle = cycle
        self._frame = frame_bytes(frame_ms)
        self._frame_s = frame_ms / 1000
        self._pos = 0
        self._started: float | None = None
        self._frames = 0

    def read(self) -> bytes:
        if self._started is None:
            self._started = time.monotonic()
        self._frames += 1
        delay = self._started + self._frames * self._frame_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        out = bytearray()
        while len(out) < self._frame:
            take = self._cycle[self._pos : self._pos + self._frame - len(out)]
            out += take
            self._pos = (self._pos + len(take)) % len(self._cycle)
        return bytes(out)

    def close(self) -> None:
        pass


class Microphone:
    """A source factory for the daemon that can be unplugged: while `removed`, opening it
    and reading from it raise DeviceError. A new plug starts the recording over."""

    def __init__(self, open_source: Callable[[], AudioSource]) -> None:
        self._open = open_source
        self.removed = False
        self.opens = 0

    def __call__(self) -> AudioSource:
        if self.removed:
            raise DeviceError("soak microphone: no such device (unplugged)")
        self.opens += 1
        return _Plugged(self, self._open())


class _Plugged:
    def __init__(self, mic: Microphone, source: AudioSource) -> None:
        self._mic, self._source = mic, source
        self.name = source.name

    def read(self) -> bytes:
        if self._mic.removed:
            raise DeviceError("soak microphone: device disconnected")
        return self._source.read()

    def close(self) -> None:
        self._source.close()


class NullSink:
    """A speaker that discards audio at real time, with a device-like buffer (as WavSink,
    without a file growing for the whole soak)."""

    def __init__(self, rate: int = 48000, period_ms: int = 20, buffer_periods: int = 3) -> None:
        self.name = "soak-null"
        self.rate = rate
        self.period_frames = rate * period_ms // 1000
        self._buffer_s = buffer_periods * period_ms / 1000
        self._started: float | None = None
        self._written_s = 0.0

    def write(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        self._written_s += len(pcm) / (2 * self.rate)
        ahead = self._started + self._written_s - self._buffer_s - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)

    def drop(self) -> None:
        pass

    def delay_s(self) -> float:
        if self._started is None:
            return 0.0
        return max(0.0, self._started + self._written_s - time.monotonic())

    def close(self) -> None:
        pass


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ the run


@dataclass
class Conversations:
    attempted: int = 0
    completed: int = 0
    no_reply: int = 0  # back to idle without the speaker talking (apology, no speech)
    broken: int = 0  # went offline or to error on the way (a fault hit it)
    wakes: int = 0
    durations: list[float] = field(default_factory=list)
    _open: dict[str, Any] | None = None
    _prev: str = "booting"

    def on_state(self, state: str, t: float) -> None:
        if state == "listening" and self._prev not in CONVERSATION:
            self.attempted += 1
            self._open = {"t": t, "spoke": False}
        elif state == "speaking" and self._open is not None:
            self._open["spoke"] = True
        elif state == "idle" and self._open is not None:
            if self._open["spoke"]:
                self.completed += 1
                self.durations.append(t - self._open["t"])
            else:
                self.no_reply += 1
            self._open = None
        elif state in ("offline", "error", "muted") and self._open is not None:
            self.broken += 1
            self._open = None
        self._prev = state


class Soak:
    def __init__(self, minutes: float, seed: int, gap_s: float, keep_warm_s: float,
                 tmp: Path, port: int, faults: bool = True) -> None:
        self.minutes = minutes
        self.inject_faults = faults
        self.seed = seed
        self.rng = random.Random(seed)
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
        self.faults: Counter[str] = Counter()
        self.faults_applied: Counter[str] = Counter()
        self.fault_log: list[str] = []
        self.server_stop_timeouts = 0
        self._abandoned: list[ReferenceServer] = []
        self._pending: list[tuple[str, ReferenceServer, int]] = []
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
        self.last_fault = ""
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

    def _task_factory(self, loop: asyncio.AbstractEventLoop, coro: Any,
                      **kw: Any) -> asyncio.Task:
        task = asyncio.Task(coro, loop=loop, **kw)
        frame = getattr(coro, "cr_frame", None)
        module = frame.f_globals.get("__name__", "") if frame is not None else ""
        name = f"{module}.{getattr(coro, '__qualname__', '')}"
        if name in CORE_TASKS:
            task.add_done_callback(lambda t, n=name: self._core_done(n, t))
        return task

    def _core_done(self, name: str, task: asyncio.Task) -> None:
        if self.stopping or task.cancelled():
            return
        exc = task.exception()
        what = f"{type(exc).__name__}: {exc}" if exc else "returned"
        self.crash(f"daemon task {name} ended at {self.at():.0f} s ({what})", exc)

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
    def _new_server(self) -> ReferenceServer:
        return ReferenceServer(port=self.port)

    async def start_server(self) -> None:
        for attempt in range(40):
            server = self._new_server()
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
        self._tally(server)
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

    def _tally(self, server: ReferenceServer) -> None:
        self._check_applied()
        for key in ("connections", "setups", "turns", "replies", "interruptions", "resumed",
                    "frames_rejected"):
            self.server_totals[key] += getattr(server.stats, key)
        self._pending = [p for p in self._pending if p[1] is not server]

    def _check_applied(self) -> None:
        still = []
        for kind, server, conn in self._pending:
            if server.stats.connections >= conn:
                self.faults_applied[kind] += 1
            else:
                still.append((kind, server, conn))
        self._pending = still

    # -- faults
    async def chaos(self) -> None:
        if not self.inject_faults:
            return
        await asyncio.sleep(self.rng.uniform(*FIRST_FAULT_S))
        kinds = list(FAULT_WEIGHTS)
        weights = [FAULT_WEIGHTS[k] for k in kinds]
        while True:
            kind = self.rng.choices(kinds, weights)[0]
            self.faults[kind] += 1
            started = self.at()
            self.last_fault = f"{kind} at {started:.0f} s"
            log.info("fault at %.0f s: %s", started, kind)
            await self.inject(kind)
            self.fault_log.append(f"{started:.0f}s {kind} ({self.at() - started:.1f} s)")
            del self.fault_log[:-DETAILS]
            await asyncio.sleep(self.rng.uniform(*FAULT_EVERY_S))

    async def inject(self, kind: str) -> None:
        r = self.rng
        if kind in ("server_restart", "server_kill"):
            await self.stop_server(kill=kind == "server_kill")
            await asyncio.sleep(r.uniform(*SERVER_DOWN_S))
            await self.start_server()
            self.faults_applied[kind] += 1
            return
        if kind == "mic_removed":
            assert self.mic is not None
            self.mic.removed = True
            await asyncio.sleep(r.uniform(*MIC_GONE_S))
            self.mic.removed = False
            self.faults_applied[kind] += 1
            return
        server = self.server
        if server is None:
            return
        nxt = server.stats.connections + 1
        faults = {
            "goaway": lambda: Faults(nxt, goaway_after_s=r.uniform(0.5, 5.0),
                                     goaway_time_left_s=r.uniform(6.0, 12.0)),
            "stall": lambda: Faults(nxt, stall_after_s=r.uniform(0.5, 6.0)),
            "malformed": lambda: Faults(nxt, malformed_before_reply=True,
                                        oversized_bytes=r.choice((0, 2_000_000))),
            "drop": lambda: Faults(nxt, drop_after_s=r.uniform(0.5, 6.0)),
            "close_1011": lambda: Faults(nxt, close_after_s=r.uniform(0.5, 6.0)),
            "refuse_resumption": lambda: Faults(nxt, refuse_resumption=True,
                                                drop_after_s=r.uniform(0.5, 6.0)),
        }[kind]()
        server.faults = faults  # read by the server when its next connection opens
        self._pending.append((kind, server, nxt))

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
            cap = self.daemon.capture
            now_frames = cap.frames if cap is not None else 0
            flowing, frames = now_frames > frames, now_frames
            quiet = time.monotonic() - self.last_change
            if flowing and quiet > STATE_HANG_S and not self._in_hang:
                self._in_hang = True
                self.hang(f"state {self.daemon.m.state.value} unchanged for {quiet:.0f} s "
                          f"with the microphone delivering, at {self.at():.0f} s")
            rss = rss_mb()
            if rss > self.peak[1]:  # every second: a spike between samples is still seen
                self.peak = (self.at(), rss, self.last_fault)
            if tick % 10 == 0:
                gc.collect()  # so an exception no task retrieved is reported now
                self.rss.append((self.at(), rss))
                self._check_applied()
            if tick % 60 == 0:
                c = self.conversations
                print(f"soak: {self.at() / 60:.0f}/{self.minutes:g} min, conversations "
                      f"{c.completed}/{c.attempted} completed, faults "
                      f"{sum(self.faults.values())}, rss {rss_mb():.0f} MB, state "
                      f"{self.daemon.m.state.value}", file=sys.stderr, flush=True)

    def _watchdog_thread(self, deadline: float) -> None:
        """If the loop never comes back, report that and end the process."""
        while time.monotonic() < deadline:
            time.sleep(1.0)
        stale = time.monotonic() - self.heartbeat
        self.hang(f"the soak did not finish: loop silent for {stale:.0f} s")
        print(json.dumps(self.figures({})), flush=True)
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
        loop.set_task_factory(self._task_factory)
        loop.set_exception_handler(self._loop_exception)
        threading.excepthook = self._thread_exception
        seconds = self.minutes * 60
        cycle = write_cycle(self.tmp / "mic.wav", self.gap_s)
        self.cycle_s = len(cycle) / (2 * RATE)
        cfg = self.config()
        self.rss_before = rss_mb()
        await self.start_server()
        self.mic = Microphone(lambda: LoopingMic(cycle, cfg.audio.frame_ms))
        self.daemon = daemon = Daemon(cfg, source=self.mic,
                                      sink=lambda: NullSink(cfg.audio.playback.rate))
        daemon.observers.append(self.observe)
        stop = asyncio.Event()
        threading.Thread(target=self._watchdog_thread, args=(time.monotonic() + seconds + 120,),
                         name="soak-watchdog", daemon=True).start()
        self.t0 = time.monotonic()
        task = asyncio.create_task(daemon.run(stop))
        helpers = [asyncio.create_task(c) for c in (self.lag_probe(), self.watch(task),
                                                    self.chaos())]
        done, _ = await asyncio.wait([task], timeout=seconds)
        if done:
            exc = task.exception()
            self.crash(f"the daemon stopped by itself at {self.at():.0f} s "
                       f"({type(exc).__name__ if exc else 'returned'}: {exc})", exc)
        final = daemon.status()
        rss_end = rss_mb()  # while it still runs, as the start figure was taken
        self._check_applied()
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
        return self.figures(final, rss_end)

    def figures(self, status: dict[str, Any], rss_end: float | None = None) -> dict[str, Any]:
        rss_end = rss_mb() if rss_end is None else rss_end
        boot = self.rss_boot if self.rss_boot is not None else self.rss_before
        start = self.rss_start if self.rss_start is not None else boot
        audio = status.get("audio", {})
        link = status.get("link", {})
        c = self.conversations
        slope = _slope(self.rss[len(self.rss) // 3:])  # after warm-up
        return {
            "minutes": self.minutes,
            "seed": self.seed,
            "crashes": self.crashes,
            "hangs": self.hangs,
            "rss_boot_mb": round(boot, 1),
            "rss_start_mb": round(start, 1),
            "rss_end_mb": round(rss_end, 1),
            "rss_growth_mb": round(rss_end - start, 1),
            "rss_peak_mb": round(max([rss_end, start, self.peak[1]]), 1),
            "rss_peak_at_s": round(self.peak[0]),
            "rss_peak_after": self.peak[2],
            "rss_slope_mb_per_hour": None if slope is None else round(slope * 3600, 1),
            "conversations": c.attempted,
            "conversations_completed": c.completed,
            "conversations_no_reply": c.no_reply,
            "conversations_broken_by_faults": c.broken,
            "conversation_p50_s": _pct(c.durations, 0.5),
            "wake_detections": c.wakes,
            "faults": dict(sorted(self.faults.items())),
            "faults_applied": dict(sorted(self.faults_applied.items())),
            "dropped_frames": audio.get("dropped_frames", 0),
            "overruns": audio.get("overruns", 0),
            "underruns": audio.get("underruns", 0),
            "link_audio_dropped_ms": link.get("audio_dropped_ms", 0),
            "mic_frames": audio.get("frames", 0),
            "loop_lag_p99_ms": _hist_pct(self.lag_ms, 0.99),
            "loop_lag_max_ms": max(self.lag_ms, default=0),
            "states_entered": dict(sorted(self.states.items())),
            "server": dict(sorted(self.server_totals.items())),
            "server_stop_timeouts": self.server_stop_timeouts,
            "logged": dict(sorted(self.logged.items())),
            "fault_log": self.fault_log[-40:],
            "crash_details": self.crash_details,
            "hang_details": self.hang_details,
            "final_state": status.get("state", ""),
            "how": (f"real daemon on a looping recording ({self.cycle_s:.1f} s: the demo "
                    f"question, then {self.gap_s:g} s of quiet, looped at real time), "
                    f"bundled reference server on 127.0.0.1:{self.port}; a random fault every "
                    f"{FAULT_EVERY_S[0]:g}-{FAULT_EVERY_S[1]:g} s after the first "
                    f"{FIRST_FAULT_S[0]:g} s; keep_warm_s {self.keep_warm_s:g}; RSS is this "
                    "whole process (daemon and server, whose record of received messages is "
                    "cleared every second); boot = first idle, start = after the first "
                    "completed conversation (warm)"),
        }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def _hist_pct(hist: Counter[int], q: float) -> int:
    total = sum(hist.values())
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= q * total:
            return value
    return 0


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares MB per second through (t, rss) samples spanning at least 5 minutes."""
    if len(points) < 3 or points[-1][0] - points[0][0] < 300:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (m - mm) for t, m in points) / var if var else None


class _Counting(logging.Handler):
    def __init__(self, soak: Soak) -> None:
        super().__init__(logging.WARNING)
        self.soak = soak

    def emit(self, record: logging.LogRecord) -> None:
        self.soak.logged[f"{record.levelname.lower()}:{record.name}"] += 1


def _free_port() -> int:
    import socket

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
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="pivox-soak-") as tmp:
        soak = Soak(args.minutes, seed, args.gap, args.keep_warm, Path(tmp),
                    args.port or _free_port())
        counting = _Counting(soak)
        logging.getLogger().addHandler(counting)
        logging.getLogger().setLevel(min(logging.WARNING, logging.getLogger().level))
        for h in logging.getLogger().handlers:
            if h is not counting:
                h.setLevel(getattr(logging, args.log_level.upper()))
        figures = asyncio.run(soak.run())
        soak.daemon = soak.server = None  # let the audio objects go before the interpreter
        gc.collect()
    if args.json:
        print(json.dumps(figures))
    else:
        how = figures.pop("how")
        width = max(len(k) for k in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
        print(f"\n{how}")
    return 1 if figures["crashes"] or figures["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
