"""Builds the adapters from config, runs the loop, turns events into actions.

One asyncio loop owns the machine and the link. The capture and playback threads hand
over through bounded queues and never wait on the network. Every decision is the pure
machine's; this module only carries out its actions and reports what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from pivox.adapters import local_ip, open_echo, open_sink, open_source, setup_options
from pivox.audio import earcons
from pivox.audio.base import AudioSink, AudioSource
from pivox.audio.capture import Capture, Captured
from pivox.audio.handoff import Handoff
from pivox.audio.ownvoice import OwnVoice
from pivox.audio.playback import Player
from pivox.config import Config
from pivox.control import ControlServer
from pivox.core import events as ev
from pivox.core import machine as mc
from pivox.hw import journal
from pivox.hw.buttons import Buttons
from pivox.hw.gpio import LedDriver, LedRing
from pivox.hw.systemd import Notifier
from pivox.link import codec as lc
from pivox.link import tools
from pivox.link.session import LiveSession
from pivox.secrets import scrub
from pivox.wake import engine_for, make_engine
from pivox.wake.base import WakeEngine

log = logging.getLogger("pivox")
MACHINE_EVENTS = ev.EVENT_TYPES
Observer = Callable[[str, dict[str, Any]], None]


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
        self._source = source or open_source(cfg)
        self._sink = sink or open_sink(cfg)
        self._wake = wake or engine_for(cfg.wake)
        # The same words heard on the speaker's own output: see Capture(own_voice=...).
        self._own_voice: OwnVoice | None = None
        if wake is None and cfg.audio.echo.enabled:
            self._own_voice = OwnVoice(make_engine() if self._wake.fallback_reason
                                       else engine_for(cfg.wake))
        self.uplink = False
        self._changed: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.capture: Capture | None = None
        self.player: Player | None = None
        self.session: LiveSession | None = None
        self.frames_in: Handoff[Captured] | None = None
        self.leds: LedDriver | None = None
        self.uplink_frames = 0
        self.conversations = 0
        self._stopping = False
        self._background: set[asyncio.Task] = set()
        self._cancelled_calls: set[str] = set()

    # ------------------------------------------------------------ observers

    def _emit(self, kind: str, **data: Any) -> None:
        for obs in self.observers:
            try:
                obs(kind, data)
            except Exception:  # an observer must never stop audio
                log.exception("observer failed")

    # ------------------------------------------------------------ events in

    def post(self, event: object) -> None:
        """Loop thread only. Machine events step the machine; the rest are link details."""
        if isinstance(event, MACHINE_EVENTS):
            self._step(event)  # type: ignore[arg-type]
        elif isinstance(event, lc.Transcript):
            if self.cfg.link.transcripts:
                who = "user" if event.direction == "input" else "speaker"
                log.info("%s said: %s", who, event.text)
        elif isinstance(event, lc.GoAway):
            log.info("server will close the connection in %.0f s", event.time_left_s)
        elif isinstance(event, lc.ToolCall):
            self._run_tools(event)
        elif isinstance(event, lc.ToolCallCancelled):
            if len(self._cancelled_calls) > 64:
                self._cancelled_calls.clear()
            self._cancelled_calls.update(event.ids)

    def _run_tools(self, event: lc.ToolCall) -> None:
        assert self.session is not None and self.player is not None
        player = self.player
        device = tools.Device(set_volume=lambda v: setattr(player, "volume", v),
                              stop=lambda: self.post(ev.TalkPressed())
                              if self.m.state in mc.CONVERSATION else None)
        for call in event.calls:
            if call.id in self._cancelled_calls:
                continue
            result, scheduling = tools.run(call, device)
            log.info("tool %s(%s): %s", call.name, call.args, result)
            self.session.send_tool_response(call, result, scheduling)

    def post_threadsafe(self, event: object) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.post, event)

    def _step(self, event: ev.Event) -> None:
        now = self.clock()
        before = self.m
        self.m, actions = mc.step(self.m, event, now, self.timings)
        if not isinstance(event, ev.AudioOut | ev.Timeout) or self.m.state is not before.state:
            self._emit("event", name=type(event).__name__, t=now)
        if self.m.state is not before.state:
            journal.set_context(PIVOX_STATE=self.m.state.value)
            if self.m.state is mc.State.LISTENING and before.state not in mc.CONVERSATION:
                self.conversations += 1
                journal.set_context(PIVOX_SESSION=f"c{self.conversations}")
            elif self.m.state not in mc.CONVERSATION:
                journal.set_context(PIVOX_SESSION=None)
            log.info("state %s -> %s (%s)", before.state.value, self.m.state.value,
                     type(event).__name__)
            self._emit("state", state=self.m.state.value, t=now, reason=self.m.reason)
            self._wake.stop_armed = self.m.state is mc.State.SPEAKING
            if self.capture is not None:
                self.capture.replying = self.m.state is mc.State.SPEAKING
            self.notifier.status(self.status_line())
            if self.m.state is mc.State.THINKING and self.session is not None:
                self.session.expect_reply()
        for action in actions:
            self._do(action)
        if self._changed is not None and self.m is not before:
            self._changed.set()

    # ------------------------------------------------------------ actions out

    def _do(self, action: ev.Action) -> None:
        assert self.session is not None and self.player is not None and self.capture is not None
        if not isinstance(action, ev.Play):
            self._emit("action", name=type(action).__name__, t=self.clock())
        match action:
            case ev.Play(pcm):
                self.player.play(pcm, "reply")
            case ev.FlushPlayback():
                self.player.flush()
            case ev.FinishPlayback():
                self.player.finish()
            case ev.PlayPrompt(name):
                self.player.play(earcons.sound(name), f"prompt:{name}")
            case ev.OpenLink():
                self.session.want(True)
            case ev.CloseLink():
                self.session.want(False)
            case ev.StartUplink():
                self.uplink = True
                for pcm in self.capture.start_streaming():  # the pre-roll first
                    self._send_up(pcm)
            case ev.StopUplink():
                self.uplink = False
                self.capture.stop_streaming()
                self.session.send_audio_end()
            case ev.SetMute(on):
                self.capture.set_muted(on)
            case ev.ReportProblem(kind, detail):
                log.warning("%s problem: %s", kind, detail, extra={"PIVOX_ERROR_KIND": kind})

    def _send_up(self, pcm: bytes, captured_at: float | None = None) -> None:
        assert self.session is not None
        self.session.send_audio(pcm, captured_at)
        self.uplink_frames += 1

    # ------------------------------------------------------------ tasks

    async def _pump_frames(self) -> None:
        assert self.frames_in is not None
        while not self._stopping:
            item = await self.frames_in.get()
            if item.event is not None:
                self.post(item.event)
                if isinstance(item.event, ev.AudioReady):
                    self.notifier.ready(self.status_line())
                continue
            if self.uplink and not mc.uplink_gated(self.m, self.full_duplex()):
                self._send_up(item.pcm, item.t)

    async def _deadlines(self) -> None:
        assert self._changed is not None
        while not self._stopping:
            deadline = self.m.deadline
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                self._step(ev.Timeout())

    async def _watchdog(self) -> None:
        """WATCHDOG=1 only while the microphone delivers and this loop turns."""
        interval = self.notifier.watchdog_s / 2
        if interval <= 0:
            return
        while not self._stopping:
            await asyncio.sleep(interval)
            assert self.capture is not None
            if self.clock() - self.capture.last_frame_at < interval:
                self.notifier.watchdog()

    async def run(self, stop: asyncio.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        frame_ms = self.cfg.audio.frame_ms
        self.frames_in = Handoff(self.loop, maxlen=max(10, 2000 // frame_ms))
        echo, echo_ref = open_echo(self.cfg)
        self.player = Player(
            self._sink, rate=self.cfg.audio.playback.rate,
            volume=self.cfg.audio.playback.volume, jitter_ms=self.cfg.audio.playback.jitter_ms,
            on_drained=lambda: self.post_threadsafe(ev.PlaybackDrained()),
            on_failed=lambda why: self.post_threadsafe(ev.DeviceFailed("speaker", why)),
            on_recovered=lambda: self.post_threadsafe(ev.AudioReady("speaker")),
            echo_ref=echo_ref, own_voice=self._own_voice)
        self.session = LiveSession(self.cfg.link, setup_options(self.cfg), frame_ms, self.post)
        self.capture = Capture(self._source, self._wake, self.frames_in,
                               preroll_frames=self.cfg.audio.preroll_ms // frame_ms,
                               echo=echo, echo_ref=echo_ref, own_voice=self._own_voice,
                               hold_residual=self.cfg.conversation.duplex != "full")
        self.player.start()
        self.capture.start()
        control = ControlServer(self.cfg.control.socket, self.command)
        try:
            await control.start()
        except OSError as exc:
            log.error("control socket %s unavailable: %s", self.cfg.control.socket, exc)
        self._emit("state", state=self.m.state.value, t=self.clock(), reason="")
        ring = self._open_leds()
        buttons = self._open_buttons()
        self.leds = LedDriver(ring)
        tasks = [asyncio.create_task(c) for c in (
            self.session.run(), self._pump_frames(), self._deadlines(), self._watchdog(),
            self.leds.run(lambda: (self.m.state, self.player.stats.level if self.player else 0))
        )]
        try:
            await stop.wait()
        finally:
            self.notifier.stopping()
            self._stopping = True  # loops end even if a cancellation is lost in a race
            await control.stop()
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.close(), 2)
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for t in stuck:
                log.error("a task did not stop in time: %s", t.get_coro())
            await asyncio.to_thread(self.capture.stop)
            await asyncio.to_thread(self.player.stop)
            ring.close()
            if buttons is not None:
                buttons.close()

    def full_duplex(self) -> bool:
        """Whether the microphone may stream to the model while the speaker talks."""
        mode = self.cfg.conversation.duplex
        if mode == "auto":
            cap = self.capture
            return bool(cap and (cap.echo_converged or cap.doubletalk.quiet_room))
        return mode == "full"

    def _open_buttons(self) -> Buttons | None:
        pins = self.cfg.buttons.pins()
        if not pins:
            return None
        loop = self.loop
        assert loop is not None

        def send(req: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(self._button, req)

        try:
            return Buttons(pins, send, long_press_s=self.cfg.buttons.long_press_s)
        except Exception as exc:  # gpiozero raises several kinds; buttons are not vital
            log.error("buttons unavailable (%s: %s)", type(exc).__name__, exc)
            return None

    def _button(self, req: dict[str, Any]) -> None:
        try:
            self.command(req)
        except (KeyError, ValueError) as exc:
            log.warning("button command failed: %s", exc)

    def _open_leds(self) -> LedRing:
        """LEDs are a nicety: if they cannot be driven, say why once and carry on."""
        try:
            return LedRing.from_config(self.cfg.leds)
        except Exception as exc:  # gpiozero raises several kinds (BadPinFactory, pin in use)
            log.error("LEDs unavailable (%s: %s); running without them",
                      type(exc).__name__, exc)
            return LedRing("none")

    # ------------------------------------------------------------ control

    def command(self, req: dict[str, Any]) -> dict[str, Any]:
        """One control-socket request (loop thread). Unknown commands raise KeyError."""
        cmd = req["cmd"]
        if cmd == "status":
            return self.status()
        if cmd in ("mute", "unmute"):
            self.post(ev.MuteSet(cmd == "mute"))
        elif cmd == "talk":
            self.post(ev.TalkPressed())
        elif cmd == "toggle_mute":
            self.post(ev.MuteSet(self.m.state is not mc.State.MUTED))
        elif cmd in ("volume", "volume_step"):
            assert self.player is not None
            level = float(req["level"]) if cmd == "volume" else round(
                min(1.0, max(0.0, self.player.volume + float(req["step"]))), 2)
            if not 0.0 <= level <= 1.0:  # also refuses NaN
                raise ValueError("volume level must be from 0.0 to 1.0")
            self.player.volume = level
            if cmd == "volume_step":
                self._do(ev.PlayPrompt("wake"))  # a click at the new level
        elif cmd == "announce":
            self._announce()
        else:
            raise KeyError(f"unknown command {cmd!r}: try status, mute, unmute, talk, volume")
        return {"state": self.m.state.value}

    def _announce(self) -> None:
        """Say the IP address and the state, for someone with no screen at hand."""
        text = f"My address is {local_ip() or 'unknown'}. I am {self.status_line()}."
        log.info("announce: %s", text)
        task = asyncio.create_task(self._speak(text))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _speak(self, text: str) -> None:
        pcm = await asyncio.to_thread(earcons.speech, text)  # never block the loop on TTS
        assert self.player is not None
        self.player.play(pcm if pcm else earcons.sound("wake"), "prompt:announce")

    # ------------------------------------------------------------ status

    def status_line(self) -> str:
        text = self.m.state.value
        return f"{text}: {self.m.reason}" if self.m.reason else text

    def status(self) -> dict[str, Any]:
        cap, pl, ses = self.capture, self.player, self.session
        return {
            "state": self.m.state.value,
            "muted": bool(cap and cap.muted),
            "reason": self.m.reason,
            "uptime_s": round(self.clock() - self.started_at, 1),
            "link": {
                "url": scrub(self.cfg.link.url), "model": self.cfg.link.model,
                "connected": bool(ses and ses.stats.connected),
                "resumable": bool(ses and ses.stats.resumable),
                "last_error": ses.stats.last_error if ses else "",
                "audio_dropped_ms": ses.stats.audio_dropped_ms if ses else 0,
            },
            "audio": {
                "capture_device": cap.device if cap else "",
                "playback_device": self.cfg.audio.playback.device,
                "frames": cap.frames if cap else 0,
                "overruns": cap.overruns if cap else 0,
                "dropped_frames": self.frames_in.dropped if self.frames_in else 0,
                "playback_level": round(pl.stats.level, 3) if pl else 0.0,
                "volume": pl.volume if pl else self.cfg.audio.playback.volume,
                "underruns": pl.stats.underruns if pl else 0,
                "echo_cancelling": bool(self.cfg.audio.echo.enabled and cap and cap.has_echo),
                "echo_converged": bool(cap and cap.echo_converged),
                "erle_db": round(cap.erle_db, 1) if cap else 0.0,
                "own_voice_ignored": cap.own_voice_ignored if cap else 0,
                "echo_held_frames": cap.echo_held if cap else 0,
                "talked_over": cap.doubletalk.opened if cap else 0,
                "room": cap.acoustic.snapshot() if cap else {},
                "duplex": "full" if self.full_duplex() else "half",
            },
            "leds": {
                "kind": self.cfg.leds.kind,
                "colours": [list(c) for c in self.leds.last_colours[:12]] if self.leds else [],
                "errors": self.leds.errors if self.leds else 0,
            },
            "wake": {
                "engine": self._wake.name, "keyword": self._wake.keywords[0],
                "keywords": list(self._wake.keywords),
                "stop_keywords": list(self._wake.stop_keywords),
                "fallback": self._wake.fallback_reason or None,
                "probabilities": {k: round(v, 3) for k, v in
                                  getattr(self._wake, "last_probability", {}).items()},
                "last_detection": cap.last_wake[0] if cap and cap.last_wake else None,
                "detections": cap.wake_count if cap else 0,
            },
        }


def run_daemon(cfg: Config) -> int:
    """`pivox run`: until SIGTERM/SIGINT."""
    import signal

    from pivox import allocator

    allocator.tune()  # before the audio threads and their buffers exist

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Daemon(cfg).run(stop)

    asyncio.run(main())
    return 0


__all__ = ["Daemon", "run_daemon"]
