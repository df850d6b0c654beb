"""The speaker path: gaps in the reply stream are hushes, not clicks; flush is immediate."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np

from pivox.audio.playback import Player
from pivox.audio.wavfile import WavSink


def sine(seconds: float, amp: float = 8000, rate: int = 24000, f: float = 440.0) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * f * t)).astype("<i2").tobytes()


def recorded(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def test_an_emptied_jitter_buffer_does_not_click(tmp_path: Path) -> None:
    out = tmp_path / "speaker.wav"
    player = Player(lambda: WavSink(out, 48000), volume=1.0, jitter_ms=40)
    player.start()
    try:
        reply = sine(0.6)  # one continuous reply, arriving in two bursts
        player.play(reply[: 24000 * 2 * 31 // 100])
        time.sleep(0.6)  # the network stalls: the buffer runs dry mid-reply
        player.play(reply[24000 * 2 * 31 // 100 :])
        player.finish()
        time.sleep(0.6)
    finally:
        player.stop()
    x = recorded(out)
    assert (np.abs(x) > 4000).sum() / 48000 > 0.3, "the reply was not played"
    # The steepest step anywhere is no steeper than the tone itself (48 kHz, 440 Hz).
    tone_step = 8000 * 2 * np.pi * 440 / 48000
    assert np.max(np.abs(np.diff(x))) <= tone_step * 1.2
    assert player.stats.underruns >= 1


def test_flush_silences_within_one_period(tmp_path: Path) -> None:
    """After flush() returns, at most the period being written and what the device already
    buffered come out: the bound is counted in the sink's periods, from the flush's time."""
    period_ms, buffer_periods = 20, 3
    out = tmp_path / "speaker.wav"
    player = Player(lambda: WavSink(out, 48000, period_ms=period_ms,
                                    buffer_periods=buffer_periods),
                    volume=1.0, jitter_ms=0)
    t0 = time.monotonic()  # the sink's clock starts at its first write, after this
    player.start()
    try:
        player.play(sine(3.0))
        time.sleep(0.5)
        player.flush()
        flushed_at = time.monotonic() - t0
        time.sleep(0.5)
        assert player.buffered_ms() == 0
    finally:
        player.stop()
    x = recorded(out)
    loud = np.flatnonzero(np.abs(x) > 100)
    played_s = (loud[-1] + 1) / 48000  # where the reply stops, on the speaker's timeline
    assert played_s > 0.4, "the reply was not playing when it was flushed"
    bound_s = flushed_at + (buffer_periods + 1) * period_ms / 1000
    assert played_s <= bound_s, (f"{(played_s - flushed_at) * 1000:.0f} ms played after the "
                                 f"flush; the device holds {buffer_periods} periods of "
                                 f"{period_ms} ms, one more may be in flight")
