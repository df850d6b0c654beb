"""The parts of a running speaker, built from config: threads, link, LEDs, buttons.

Device kinds are chosen in `pivox.audio.devices` and the session's setup in
`pivox.link.options`; this module connects the parts to each other and to the loop (who
reports to whom), so the daemon itself never builds anything. Tests
pass their own source, sink, wake engine or notifier; everything else is the real thing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivox.audio.base import AudioSink, AudioSource
from pivox.audio.capture import Capture, Captured
from pivox.audio.devices import open_echo, open_sink, open_source
from pivox.audio.handoff import EventChannel, Handoff
from pivox.audio.ownvoice import OwnVoice
from pivox.audio.playback import Player
from pivox.audio.vad import SpeechDetector
from pivox.config import Config
from pivox.core import events as ev
from pivox.core.formats import frames_per_message
from pivox.daemon.faults import FaultHook
from pivox.hw.buttons import Buttons
from pivox.hw.gpio import LedDriver, LedRing
from pivox.link.base import RealtimeLink
from pivox.link.options import setup_options
from pivox.link.session import LiveSession
from pivox.wake import engine_for, make_engine
from pivox.wake.base import WakeEngine

log = logging.getLogger("pivox")
PARTS = ("capture", "playback", "link", "pump", "deadlines", "alerts", "leds", "control",
         "netwatch", "mqtt")


@dataclass
class Overrides:
    """What a test rig may supply instead of the configured devices."""

    source: Callable[[], AudioSource] | None = None
    sink: Callable[[], AudioSink] | None = None
    wake: WakeEngine | None = None


def wake_engines(cfg: Config, wake: WakeEngine | None) -> tuple[WakeEngine, OwnVoice | None]:
    """The wake engine, and its twin that listens to the speaker's own output (see
    Capture(own_voice=...)): the same words, so a reply's "Okay Nabu" never wakes it."""
    engine = wake or engine_for(cfg.wake)
    if wake is not None or not cfg.audio.echo.enabled:
        return engine, None
    twin = make_engine() if engine.fallback_reason else engine_for(cfg.wake)
    return engine, OwnVoice(twin)


@dataclass
class Parts:
    capture: Capture
    player: Player
    link: RealtimeLink
    frames: Handoff[Captured]
    events: EventChannel[ev.Event]


def build(cfg: Config, loop: asyncio.AbstractEventLoop, over: Overrides, wake: WakeEngine,
          own_voice: OwnVoice | None, post: Callable[[object], None],
          died: Callable[[str], Callable[[BaseException], None]],
          faults: FaultHook | None) -> Parts:
    """Threads report device events through a lossless channel, frames through a lossy
    one, and their own death to `died(part)`."""
    frame_ms = cfg.audio.frame_ms
    frames: Handoff[Captured] = Handoff(loop, maxlen=max(10, 2000 // frame_ms),
                                        batch=frames_per_message(frame_ms))
    events: EventChannel[ev.Event] = EventChannel(loop, post)
    echo, echo_ref = open_echo(cfg)
    pb = cfg.audio.playback
    player = Player(
        over.sink or open_sink(cfg), rate=pb.rate, volume=pb.volume, jitter_ms=pb.jitter_ms,
        on_drained=lambda: events.put(ev.PlaybackDrained()),
        on_failed=lambda why: events.put(ev.DeviceFailed("speaker", why)),
        on_recovered=lambda: events.put(ev.AudioReady("speaker")),
        echo_ref=echo_ref, own_voice=own_voice, on_died=died("playback"),
        fault=faults.point("playback") if faults else None)
    link = LiveSession(cfg.link, setup_options(cfg), frame_ms, post)
    capture = Capture(
        over.source or open_source(cfg), wake, frames, events.put,
        preroll_frames=cfg.audio.preroll_ms // frame_ms, echo=echo, echo_ref=echo_ref,
        speech=SpeechDetector(end_ms=cfg.link.silence_ms)  # the user's turn ends here
        if cfg.conversation.turn_detection == "local" else None,
        own_voice=own_voice, hold_residual=cfg.conversation.duplex != "full",
        on_died=died("capture"), fault=faults.point("capture") if faults else None)
    return Parts(capture, player, link, frames, events)


def open_leds(cfg: Config) -> LedDriver:
    """LEDs are a nicety: if they cannot be driven, say why once and carry on."""
    try:
        ring = LedRing.from_config(cfg.leds)
    except Exception as exc:  # gpiozero raises several kinds (BadPinFactory, pin in use)
        log.error("LEDs unavailable (%s: %s); running without them", type(exc).__name__, exc)
        ring = LedRing("none")
    return LedDriver(ring)


def open_buttons(cfg: Config, loop: asyncio.AbstractEventLoop,
                 press: Callable[[dict[str, Any]], None]) -> Buttons | None:
    """gpiozero calls back on its own thread: each press hops to the loop."""
    pins = cfg.buttons.pins()
    if not pins:
        return None

    def send(req: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(press, req)

    try:
        return Buttons(pins, send, long_press_s=cfg.buttons.long_press_s)
    except Exception as exc:  # gpiozero raises several kinds; buttons are not vital
        log.error("buttons unavailable (%s: %s)", type(exc).__name__, exc)
        return None
