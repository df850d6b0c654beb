"""Timers, alarms, announcements and the state file, on the loop: the glue around
`core/schedule.py` (what rings when) and `home/state.py` (what survives a restart).

The scheduler task sleeps until the next due time (no polling) or until the schedule
changes, and posts `Ring` to the machine; the machine's `StartRinging` comes back here and
the ring earcon is queued through the normal playback path every `RING_PERIOD_S`, pausing
while the model speaks, until `StopRinging` or `RING_S`. None of it needs the link. An
announcement waits until no conversation is in the way (unless `now`), then goes to the
machine as `Announce`; the machine says whether the model or the local voice says it.
Saving runs in a thread, one write at a time, always of the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pivox.audio import earcons
from pivox.audio.playback import Player
from pivox.config import Config
from pivox.core import events as ev
from pivox.core import schedule as sc
from pivox.core.liveness import stale
from pivox.core.machine import CONVERSATION, Machine, State
from pivox.home import state as hs
from pivox.link import tools
from pivox.link.base import RealtimeLink
from pivox.wake.base import WakeEngine

log = logging.getLogger("pivox.alerts")
RING_PERIOD_S = 1.5  # one 0.6 s burst of the ring earcon, then a pause
BUSY_MS = 100.0  # more than this queued for the speaker: the next burst waits
LINK_WAIT_S = 3.0  # an announcement from idle waits this long for a session to open
TALKING = (State.THINKING, State.SPEAKING)  # the model has the speaker: the ring pauses
# The wall clock can be set under a wait (NTP at boot, a time zone moved): the next due
# time is looked at again at least this often, so nothing rings more than this late.
RECHECK_S = 60.0
STALL_S = 5.0  # the scheduler this late out of its own wait has stalled: a timer may not ring


@dataclass(frozen=True)
class AlertsSnapshot:
    timers: tuple[dict[str, Any], ...]
    alarms: tuple[dict[str, Any], ...]
    ringing: tuple[str, ...]
    missed: int  # timers and alarms that came due while the speaker was off, too long ago
    save_errors: int


@dataclass(frozen=True)
class Pending:
    text: str = ""  # an announcement, or
    wav: bytes = b""  # a sound to play (24 kHz s16 mono)
    now: bool = False  # end any conversation instead of waiting for it


class Alerts:
    """The daemon's `tools.Clockwork`, its ringing, its announcements and its state file."""

    def __init__(self, cfg: Config, player: Player, link: RealtimeLink, wake: WakeEngine,
                 post: Callable[[ev.Event], None], machine: Callable[[], Machine], *,
                 clock: Callable[[], float] = time.time, ring_s: float = sc.RING_S) -> None:
        self._player, self._link, self._wake = player, link, wake
        self._post, self._machine, self._clock = post, machine, clock
        self._ring_s = ring_s
        self.zone = tools.zone(cfg.home.timezone)
        self.path: Path | None = cfg.state.path()
        saved = hs.load(self.path)
        self.schedule = saved.schedule
        self._muted_at_start = saved.muted
        if saved.volume is not None:
            player.volume = saved.volume
        self._saved = saved
        self._changed = asyncio.Event()  # the schedule changed: recompute the next wake
        self._wake_by: float | None = None  # monotonic: when the scheduler is due to look
        self._state_seen = asyncio.Event()  # the machine's state changed
        self._ringing: list[str] = []
        self._ring_task: asyncio.Task[None] | None = None
        self._pending: deque[Pending] = deque(maxlen=8)
        self._announcing = asyncio.Event()
        self._saving: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.missed = 0
        self.save_errors = 0

    # ------------------------------------------------------------ the model's tools

    def set_timer(self, seconds: object, label: str) -> dict[str, Any]:
        self.schedule, timer = sc.add_timer(self.schedule, seconds, label, self._clock())
        log.info("timer %r set for %s", timer.label, sc.spoken_length(timer.seconds))
        self._touched()
        return {"result": f"timer {timer.label!r} set for {sc.spoken_length(timer.seconds)}"}

    def set_alarm(self, time: str, label: str, repeat: str) -> dict[str, Any]:
        self.schedule, alarm = sc.add_alarm(self.schedule, time, label, repeat, self._clock())
        at = datetime.fromtimestamp(sc.alarm_due(alarm, self.zone), self.zone)
        log.info("alarm %r set for %s (%s), next %s", alarm.label, alarm.time, alarm.repeat,
                 at.isoformat(timespec="minutes"))
        self._touched()
        return {"result": f"alarm {alarm.label!r} set for {alarm.time} ({alarm.repeat}); "
                          f"next on {at.strftime('%A %d %B at %H:%M')}"}

    def cancel(self, kind: str, label: str) -> dict[str, Any]:
        self.schedule, gone = sc.cancel(self.schedule, kind, label)
        if not gone:
            raise sc.ScheduleError(f"no {kind} named {label!r}" if label else f"no {kind}s set")
        log.info("%s cancelled: %s", kind, ", ".join(gone))
        self._touched()
        return {"result": f"cancelled: {', '.join(gone)}"}

    def listing(self, kind: str) -> dict[str, Any]:
        items = sc.listing(self.schedule, self._clock(), self.zone)[f"{kind}s"]
        return {"result": items or f"no {kind}s set"}

    # ------------------------------------------------------------ state and status

    def snapshot(self) -> AlertsSnapshot:
        out = sc.listing(self.schedule, self._clock(), self.zone)
        return AlertsSnapshot(tuple(out["timers"]), tuple(out["alarms"]),
                              tuple(self._ringing), self.missed, self.save_errors)

    def observe(self, kind: str, data: dict[str, Any]) -> None:
        """A daemon observer: state changes release waiting announcements and may change
        the mute to remember; any event may follow a volume change."""
        if kind == "state":
            self._state_seen.set()
        self.settings_changed()

    def settings_changed(self) -> None:
        """Volume or mute may have changed: save if they differ from the file."""
        muted = self._machine().state is State.MUTED
        if (round(self._player.volume, 3), muted) != (self._saved.volume, self._saved.muted):
            self._save_soon()

    def stalled(self, now: float) -> str:
        """The supervisor's check (`now` monotonic): a scheduler that is not back from its
        wait well after it was due (its own timeout, or a change to the schedule) has
        stalled without raising, and a timer set on it would never ring."""
        return "" if self._wake_by is None else stale(
            "timer scheduler wake-up since it was due", self._wake_by, now, STALL_S)

    def _touched(self) -> None:
        self._changed.set()
        now = time.monotonic()  # the scheduler must see the change at once
        self._wake_by = now if self._wake_by is None else min(self._wake_by, now)
        self._save_soon()

    def _current(self) -> hs.Saved:
        state = self._machine().state
        muted = state is State.MUTED if state is not State.BOOTING else self._saved.muted
        return hs.Saved(round(self._player.volume, 3), muted, self.schedule)

    def _save_soon(self) -> None:
        if self.path is not None and (self._saving is None or self._saving.done()):
            self._saving = self._spawn(self._save())

    async def _save(self) -> None:
        assert self.path is not None
        while (saved := self._current()) != self._saved:
            try:
                await asyncio.to_thread(hs.save, self.path, saved)
            except OSError as exc:
                self.save_errors += 1
                log.error("state file %s not saved: %s", self.path, exc.strerror or exc)
                return
            self._saved = saved

    # ------------------------------------------------------------ the scheduler task

    async def run(self) -> None:
        """Ring what came due while off (if recent), then wake at each next due time."""
        if self._muted_at_start:
            self._post(ev.MuteSet(True))
        self.schedule, ring, missed = sc.at_start(self.schedule, self._clock(), self.zone)
        for f in missed:
            self.missed += 1
            log.warning("%s %r was missed while the speaker was off (due %s, %.0f min ago)",
                        f.kind, f.label, self._when(f.due), f.late_s / 60)
        if ring or missed:
            self._save_soon()
        for f in ring:
            log.info("%s %r came due while the speaker was off (%.0f s ago): ringing now",
                     f.kind, f.label, f.late_s)
            self._ring(f)
        announcer = self._spawn(self._announcer())
        try:
            while True:
                nxt = sc.next_due(self.schedule, self.zone)
                timeout = None if nxt is None else min(RECHECK_S,
                                                       max(0.0, nxt - self._clock()))
                self._changed.clear()
                self._wake_by = None if timeout is None else time.monotonic() + timeout
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
                self._wake_by = None
                self.schedule, fired = sc.due(self.schedule, self._clock(), self.zone)
                for f in fired:
                    self._ring(f)
                if fired:
                    self._save_soon()
        finally:
            announcer.cancel()
            self.close()

    def _when(self, t: float) -> str:
        return datetime.fromtimestamp(t, self.zone).isoformat(timespec="seconds")

    def _ring(self, f: sc.Fired) -> None:
        log.info("%s %r rings (due %s)", f.kind, f.label, self._when(f.due))
        what = f"The {f.label} {f.kind}" if f.label not in ("timer", "alarm") else f"A {f.kind}"
        self._post(ev.Ring(f.label, f"{what} on the speaker has just gone off. Tell the user "
                                    "so in a few words, naming it. Do not call any tool."))

    # ------------------------------------------------------------ ringing

    def start_ringing(self, label: str) -> None:
        """StartRinging: the ring earcon until StopRinging or RING_S; the stop word is armed
        so "stop" silences it whatever the state."""
        self._ringing.append(label)
        self._wake.stop_armed = True
        if self._ring_task is not None:
            self._ring_task.cancel()  # a new ring starts the five minutes again
        self._ring_task = self._spawn(self._ring_loop())

    def stop_ringing(self) -> None:
        if self._ringing:
            log.info("ringing stopped: %s", ", ".join(self._ringing))
        self._ringing.clear()
        self._wake.stop_armed = self._machine().state is State.SPEAKING
        if self._ring_task is not None:
            self._ring_task.cancel()
            self._ring_task = None

    async def _ring_loop(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self._ring_s
        ring = earcons.sound("ring")
        while loop.time() < end:
            # Not over the model saying which one, and never piled up behind another
            # sound (a prompt playing): the next burst goes once the speaker is free.
            if self._machine().state in TALKING or self._player.buffered_ms() > BUSY_MS:
                await asyncio.sleep(0.1)
                continue
            self._player.play(ring, "prompt:ring")
            await asyncio.sleep(RING_PERIOD_S)
        log.info("ringing ended by itself after %.0f s", self._ring_s)
        self._post(ev.RingEnd())

    # ------------------------------------------------------------ announcements

    def announce(self, text: str = "", wav: bytes = b"", now: bool = False) -> None:
        """Queue an announcement (or a sound); said once no conversation is in the way."""
        self._pending.append(Pending(" ".join(text.split())[:500], wav, now))
        self._announcing.set()

    async def _announcer(self) -> None:
        while True:
            await self._announcing.wait()
            while self._pending:
                item = self._pending[0]
                if item.now and self._machine().state in CONVERSATION:
                    self._post(ev.TalkPressed())  # ends it (while ringing: only the ring)
                if self._machine().state in CONVERSATION:
                    self._state_seen.clear()
                    await self._state_seen.wait()  # the current reply ends first
                    continue
                self._pending.popleft()
                if item.wav:
                    self._player.play(earcons.sound("announce"), "prompt:announce")
                    self._player.play(item.wav, "prompt:sound")
                    continue
                await self._open_for(item.text)
                self._post(ev.Announce(item.text))
            self._announcing.clear()

    async def _open_for(self, text: str) -> None:
        """From idle with the session closed (kept warm only a minute), open it briefly so
        the model can say the text; offline, muted or failing, the local voice will."""
        m = self._machine()
        if m.state is not State.IDLE or m.link_up:
            return
        self._link.want(True)
        deadline = asyncio.get_running_loop().time() + LINK_WAIT_S
        while not self._machine().link_up and self._machine().state is State.IDLE:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._state_seen.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_seen.wait(), min(left, 0.1))

    def send_text(self, text: str) -> None:
        """SendText: the text turn goes to the model; the local voice says it instead if
        the session went away meanwhile."""
        if not self._link.send_text(text):
            self.say_locally(text)

    def say_locally(self, text: str) -> None:
        """SayLocally: the announce earcon, then espeak-ng, made off the loop."""
        self._spawn(self._say(text))

    async def _say(self, text: str) -> None:
        pcm = await asyncio.to_thread(earcons.speech, text)
        self._player.play(earcons.sound("announce"), "prompt:announce")
        if pcm:
            self._player.play(pcm, "prompt:speech")

    # ------------------------------------------------------------ housekeeping

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    def close(self) -> None:
        for task in list(self._background):
            if task is not self._saving:
                task.cancel()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("alerts: %s", task.exception(), exc_info=task.exception())
