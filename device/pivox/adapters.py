"""Builds the adapters the daemon runs on from config: microphone, speaker, echo
canceller, the Live session's setup. Chosen here so the daemon never names a device kind."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from pivox.audio.base import AudioSink, AudioSource
from pivox.audio.echo import EchoReference, SpeexEcho
from pivox.config import Config
from pivox.core.formats import MIC_RATE as RATE
from pivox.link import codec as lc
from pivox.link import tools

log = logging.getLogger("pivox")


def open_source(cfg: Config) -> Callable[[], AudioSource]:
    cap, frame_ms = cfg.audio.capture, cfg.audio.frame_ms
    if cap.device.startswith("wav:"):
        from pivox.audio.wavfile import WavSource

        return lambda: WavSource(cap.device[4:], frame_ms, realtime=cap.realtime)
    from pivox.audio.alsa import AlsaSource

    return lambda: AlsaSource(cap.device, cap.rate, cap.channels, cap.format, cap.channel,
                              cap.period_ms, frame_ms)


def open_sink(cfg: Config) -> Callable[[], AudioSink]:
    pb = cfg.audio.playback
    if pb.device.startswith("wav:"):
        from pivox.audio.wavfile import WavSink

        return lambda: WavSink(pb.device[4:], pb.rate, pb.period_ms)
    from pivox.audio.alsa import AlsaSink

    return lambda: AlsaSink(pb.device, pb.rate, pb.channels, pb.period_ms)


def setup_options(cfg: Config) -> lc.SetupOptions:
    link, conv = cfg.link, cfg.conversation
    onoff = {"": None, "on": True, "off": False}
    return lc.SetupOptions(
        model=link.model, voice=link.voice,
        system_instruction=tools.with_home(link.system_instruction, cfg.home),
        language=link.language, silence_duration_ms=link.silence_ms,
        automatic_activity=conv.turn_detection == "server",
        start_sensitivity=f"START_SENSITIVITY_{conv.start_sensitivity.upper()}",
        end_sensitivity=f"END_SENSITIVITY_{conv.end_sensitivity.upper()}",
        input_transcription=link.transcripts,
        # A reply that asks is told by its transcription: needed for follow-up = "question".
        output_transcription=link.transcripts or conv.follow_up == "question",
        context_compression=link.context_compression, thinking_level=link.thinking_level,
        thinking_budget=None if link.thinking_budget < 0 else link.thinking_budget,
        proactive_audio=onoff[link.proactive_audio],
        affective_dialog=onoff[link.affective_dialog],
        tools=tools.declarations() if link.tools else (), search=link.search,
    )


def open_echo(cfg: Config) -> tuple[SpeexEcho | None, EchoReference | None]:
    """Without the canceller the speaker still works, in half duplex."""
    ec = cfg.audio.echo
    if not ec.enabled:
        return None, None
    try:
        echo = SpeexEcho(tail_ms=ec.tail_ms, denoise=ec.denoise, agc=ec.agc,
                         frame=RATE * cfg.audio.frame_ms // 1000)
    except OSError as exc:
        log.error("echo cancellation unavailable (%s); talking over replies needs the "
                  "wake word", exc)
        return None, None
    return echo, EchoReference()


def local_ip() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
            return str(s.getsockname()[0])
        except OSError:
            return ""
