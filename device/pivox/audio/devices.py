"""The audio devices the daemon runs on, chosen from config: microphone, speaker, echo
canceller. Chosen here so the daemon never names a device kind."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pivox.audio.base import AudioSink, AudioSource
from pivox.audio.echo import EchoReference, SpeexEcho
from pivox.config import Config
from pivox.core.formats import MIC_RATE as RATE

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
