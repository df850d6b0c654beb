"""The daemon: one loop, one machine, one supervisor.

Events from the threads (lossless) and from the link step the pure machine; its actions go
to the `ActionRunner`; microphone frames go from the capture hand-off to the link while the
machine says so. Every long-lived task and thread belongs to the `Supervisor`, which
exits the daemon non-zero when one dies and pings the watchdog only while all are alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from pivox.audio.base import AudioSink, AudioSource
from pivox.audio.capture import Capture
from pivox.audio.playback import Player
from pivox.config import Config
from pivox.control import ControlServer
from pivox.core import events as ev
from pivox.core import machine as mc
from pivox.core.leds import shown
from pivox.core.liveness import stale
from pivox.daemon import faults as fh
from pivox.daemon import status as st
from pivox.daemon import wiring
from pivox.daemon.actions import ActionRunner
from pivox.daemon.alerts import Alerts
from pivox.daemon.commands import Commands
from pivox.daemon.supervisor import PartDied, Supervisor
from pivox.home import open_bridge
from pivox.hw import journal
from pivox.hw.gpio import LedDriver
from pivox.hw.netwatch import NetWatch
from pivox.hw.systemd import Notifier
from pivox.link.base import RealtimeLink, ToolCall, ToolCallCancelled, Transcript
from pivox.wake.base import WakeEngine

log = logging.getLogger("pivox")
Observer = Callable[[str, dict[str, Any]], None]
# A thread beats every period (20 ms) and every half second while it retries a device;
# quiet for half the watchdog period (within these bounds) means wedged.
QUIET_MIN_S, QUIET_MAX_S = 0.5, 2.0
BACKLOG_S = 2.0  # frames waiting this long: the pump has stopped
OVERDUE_S = 2.0  # a deadline this far past: the deadline task has stopped
CONTROL_RETRY_S = 30


class Daemon:
    def __init__(self, cfg: Config, *, source: Callable[[], AudioSource] | None = None,
                 sink: Callable[[], AudioSink] | None = None, wake: WakeEngine | None = None,
                 notifier: Notifier | None = None, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.timings = cfg.conversation.timings()
        self.started_at = clock()
        self.m = mc.initial(self.started_at, self.timings)
        self.notifier = notifier or Notifier()
        self.observers: list[Observer] = []
        self._over = wiring.Overrides(source, sink, wake)
        self._wake, self._own_voice = wiring.wake_engines(cfg, wake)
        self.faults = fh.FaultHook(wiring.PARTS) if fh.enabled() else None
        self.supervisor = Supervisor(self.notifier, clock)
        self._changed: asyncio.Event | None = None  # the deadline came sooner
        self._waits_until: float | None = None  # the deadline the deadlines task waits for
        self._parts: wiring.Parts | None = None
        self._runner: ActionRunner | None = None
        self.leds: LedDriver | None = None
        self.commands: Commands | None = None
        self.mqtt: Any = None  # home.mqtt.MqttBridge, once [mqtt] host is set
        self.alerts: Alerts | None = None  # timers, alarms, announcements, the state file
        self.conversations = 0
        self.netwatch: NetWatch | None = None

    # The parts, once running (tests and the benchmarks read them).
    @property
    def capture(self) -> Capture | None:
        return self._parts.capture if self._parts else None

    @property
    def player(self) -> Player | None:
        return self._parts.player if self._parts else None

    @property
    def session(self) -> RealtimeLink | None:
        return self._parts.link if self._parts else None

    @property
    def uplink_frames(self) -> int:
        return self._runner.uplink_frames if self._runner else 0

    # ------------------------------------------------------------ events in

    def _emit(self, kind: str, **data: Any) -> None:
        for obs in self.observers:
            try:
                obs(kind, data)
            except Exception:  # an observer must never stop audio
                log.exception("observer failed")

    def post(self, event: object) -> None:
        """Loop thread only. Machine events step the machine; the rest are link details."""
        if isinstance(event, ev.EVENT_TYPES):
            self._step(cast(ev.Event, event))  # EVENT_TYPES is the union's members
            if isinstance(event, ev.AudioReady) and event.device == "microphone":
                self.notifier.ready(st.status_line(self.m))
        elif isinstance(event, Transcript):
            if event.direction == "output" and event.text:  # does the reply ask? (follow-up)
                self._step(ev.ReplySaid(event.text))
            if self.cfg.link.transcripts:
                who = "user" if event.direction == "input" else "speaker"
                log.info("%s said: %s", who, event.text)
        elif isinstance(event, ToolCall) and self._runner is not None:
            self._runner.tool_call(event)
        elif isinstance(event, ToolCallCancelled) and self._runner is not None:
            self._runner.tool_cancelled(event)

    def _step(self, event: ev.Event) -> None:
        now = self.clock()
        before = self.m
        self.m, actions = mc.step(self.m, event, now, self.timings)
        if not isinstance(event, ev.AudioOut | ev.Timeout) or self.m.state is not before.state:
            self._emit("event", name=type(event).__name__, t=now)
        if self.m.state is not before.state:
            self._journal_state(before, event, now)
        assert self._runner is not None
        for action in actions:
            if not isinstance(action, ev.Play):
                self._emit("action", name=type(action).__name__, t=self.clock())
            self._runner.do(action)
        if self._changed is not None and self._sooner(self.m.deadline):
            self._changed.set()

    def _sooner(self, deadline: float | None) -> bool:
        """Whether the deadlines task must wake for this deadline. Most steps (each chunk
        of a reply) only push the deadline later: the task finds that out when it wakes,
        rather than being woken for it tens of times a second."""
        waits = self._waits_until
        return deadline is not None and (waits is None or deadline < waits)

    def _journal_state(self, before: mc.Machine, event: ev.Event, now: float) -> None:
        state = self.m.state
        journal.set_context(PIVOX_STATE=state.value)
        if state is mc.State.LISTENING and before.state not in mc.CONVERSATION:
            self.conversations += 1
            journal.set_context(PIVOX_SESSION=f"c{self.conversations}")
        elif state not in mc.CONVERSATION:
            journal.set_context(PIVOX_SESSION=None)
        log.info("state %s -> %s (%s)", before.state.value, state.value, type(event).__name__)
        self._emit("state", state=state.value, t=now, reason=self.m.reason)
        self.notifier.status(st.status_line(self.m))

    # ------------------------------------------------------------ tasks

    async def _pump_frames(self) -> None:
        assert self._parts is not None and self._runner is not None
        frames, runner = self._parts.frames, self._runner
        while True:
            items = await frames.take()
            if mc.sends_audio(self.m, self.full_duplex()):
                for item in items:
                    runner.send_up(item.pcm, item.t)

    async def _deadlines(self) -> None:
        assert self._changed is not None
        while True:
            deadline = self._waits_until = self.m.deadline
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:  # the machine ignores it if the deadline moved on
                self._step(ev.Timeout())

    async def _leds(self) -> None:
        assert self.leds is not None and self._parts is not None
        player = self._parts.player
        await self.leds.run(lambda: (shown(self.m.state, self.m.ringing), player.stats.level))

    def _supervise(self, parts: wiring.Parts, control: ControlServer) -> None:
        sup = self.supervisor
        wrap = self.faults.wrap if self.faults else (lambda _name, run: run)
        cap, player, frames = parts.capture, parts.player, parts.frames
        quiet = min(QUIET_MAX_S, max(QUIET_MIN_S, self.notifier.watchdog_s / 2)) \
            if self.notifier.watchdog_s > 0 else QUIET_MAX_S
        sup.thread("capture", lambda now: "thread ended" if not cap.alive else
                   stale("microphone frame", cap.heartbeat, now, quiet))
        sup.thread("playback", lambda now: "thread ended" if not player.alive else
                   stale("speaker period", player.heartbeat, now, quiet))
        sup.task("link", wrap("link", parts.link.run), check=parts.link.stalled)
        sup.task("pump", wrap("pump", self._pump_frames), check=lambda now: stale(
            "frame taken", now - frames.oldest_age(now), now, BACKLOG_S))
        sup.task("deadlines", wrap("deadlines", self._deadlines), check=self._overdue)
        sup.task("leds", wrap("leds", self._leds), restart=True)
        assert self.alerts is not None  # a timer must ring: its loss restarts the service
        sup.task("alerts", wrap("alerts", self.alerts.run), check=self.alerts.stalled)
        sup.task("control", wrap("control", lambda: self._control(control)), restart=True)
        # The kernel's news of a returning network ends any backoff wait at once.
        self.netwatch = NetWatch(lambda _why: parts.link.network_changed())
        sup.task("netwatch", wrap("netwatch", self.netwatch.run), restart=True)
        if self.cfg.mqtt.enabled:  # a nicety too: a broker never takes the speaker down
            self.mqtt = open_bridge(self.cfg.mqtt, self.status, self.command)
            if self.mqtt is not None:
                self.observers.append(self.mqtt.observe)
                sup.task("mqtt", wrap("mqtt", self.mqtt.run), restart=True)

    async def _control(self, control: ControlServer) -> None:
        """The control socket is for people and scripts: without it the speaker still
        works, so a socket that cannot be made is retried, not fatal."""
        while True:
            try:
                await control.start()
                break
            except OSError as exc:
                log.error("control socket %s unavailable: %s; retrying in %d s",
                          self.cfg.control.socket, exc, CONTROL_RETRY_S)
                await asyncio.sleep(CONTROL_RETRY_S)
        try:
            await asyncio.Event().wait()  # serves until cancelled
        finally:
            await control.stop()

    def _overdue(self, now: float) -> str:
        d = self.m.deadline
        return f"deadline {now - d:.1f} s overdue" if d is not None and now - d > OVERDUE_S \
            else ""

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set. Raises PartDied when a part fails (the caller exits
        non-zero so that systemd restarts the service)."""
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        parts = self._parts = wiring.build(self.cfg, loop, self._over, self._wake,
                                           self._own_voice, self.post,
                                           self.supervisor.thread_died, self.faults)
        self._runner = ActionRunner(parts.player, parts.capture, parts.link, self._wake,
                                    self.post, loop)
        self._runner.in_conversation = lambda: self.m.state in mc.CONVERSATION
        self._runner.local_turns = self.cfg.conversation.turn_detection == "local"
        self._runner.timezone = self.cfg.home.timezone
        self.alerts = Alerts(self.cfg, parts.player, parts.link, self._wake, self.post,
                             lambda: self.m)  # reads the state file: volume before playback
        self._runner.alerts = self.alerts
        self.observers.append(self.alerts.observe)
        self.leds = wiring.open_leds(self.cfg)
        self.observers += [self.leds.observe, parts.player.observe,  # state changes
                           parts.capture.observe]
        self.commands = Commands(self.post, lambda: self.m, parts.player, self.status,
                                 self._spoken_status, self.faults, self.alerts)
        control = ControlServer(self.cfg.control.socket, self.command)
        buttons = wiring.open_buttons(self.cfg, loop, self.commands.button)
        self._supervise(parts, control)
        # What is built by now lives as long as the daemon: out of the collector's sight,
        # a full collection walks only what came later (15 ms of one core here, several
        # times that on a Pi Zero 2 W, in one burst that would starve the audio threads).
        gc.collect()
        gc.freeze()
        parts.player.start()
        parts.capture.start()
        self._emit("state", state=self.m.state.value, t=self.clock(), reason="")
        try:
            await self.supervisor.run(stop)
        except PartDied:
            raise
        finally:
            await self._shut_down(parts, buttons)

    async def _shut_down(self, parts: wiring.Parts, buttons: Any) -> None:
        self.notifier.stopping()
        assert self._runner is not None
        self._runner.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(parts.link.close(), 2)
        await asyncio.to_thread(parts.capture.stop)
        await asyncio.to_thread(parts.player.stop)
        if self.leds is not None:
            self.leds.ring.close()
        if buttons is not None:
            buttons.close()

    def full_duplex(self) -> bool:
        """Whether the microphone may stream to the model while the speaker talks."""
        mode = self.cfg.conversation.duplex
        if mode == "auto":
            return self._parts is not None and self._parts.capture.may_talk_over
        return mode == "full"

    # ------------------------------------------------------------ control and status

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.commands is not None
        return self.commands.handle(req)

    def _spoken_status(self) -> str:
        return f"My address is {local_ip() or 'unknown'}. I am {st.status_line(self.m)}."

    def status_line(self) -> str:
        return st.status_line(self.m)

    def status(self) -> dict[str, Any]:
        assert self._parts is not None and self.leds is not None
        p = self._parts
        engine = self._wake
        return st.build(self.cfg, st.Snapshots(
            machine=self.m, uptime_s=self.clock() - self.started_at,
            capture=p.capture.snapshot(), playback=p.player.snapshot(),
            link=p.link.snapshot(), leds=self.leds.snapshot(),
            wake=st.WakeSnapshot(engine.name, tuple(engine.keywords),
                                 tuple(engine.stop_keywords), engine.fallback_reason or "",
                                 dict(getattr(engine, "last_probability", {}))),
            health=self.supervisor.snapshot(), audio_dropped_frames=p.frames.dropped,
            full_duplex=self.full_duplex(),
            mqtt=self.mqtt.snapshot() if self.mqtt is not None else None,
            alerts=self.alerts.snapshot() if self.alerts is not None else None))


def run_daemon(cfg: Config) -> int:
    """`pivox run`: until SIGTERM/SIGINT (exit 0), or until a part dies (exit 1)."""
    import signal

    from pivox import allocator

    allocator.tune()  # before the audio threads and their buffers exist

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await Daemon(cfg).run(stop)
        except PartDied:
            return 1  # already in the journal, naming the part
        return 0

    return asyncio.run(main())


def local_ip() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return str(s.getsockname()[0])
        except OSError:
            return ""
