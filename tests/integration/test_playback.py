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
    out = tmp_path / "speaker.wav"
    player = Player(lambda: WavSink(out, 48000), volume=1.0, jitter_ms=0)
    player.start()
    try:
        player.play(sine(3.0))
        time.sleep(0.5)
        player.flush()
        time.sleep(0.5)
        assert player.buffered_ms() == 0
    finally:
        player.stop()
    x = recorded(out)
    loud = np.flatnonzero(np.abs(x) > 100)
    played_s = (loud[-1] + 1) / 48000
    # 0.5 s requested before the flush; at most one period (20 ms) and the sink's small
    # buffer more, never the rest of the 3 s reply.
    assert played_s < 0.5 + 0.1
