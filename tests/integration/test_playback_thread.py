"""The event loop never resamples: `play` only queues, the playback thread converts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from pivox.audio import convert
from pivox.audio.playback import Player
from pivox.audio.wavfile import WavSink


def test_reply_and_prompt_audio_is_resampled_on_the_playback_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real_stream, real_resample = soxr.ResampleStream, soxr.resample

    class Stream:
        def __init__(self, *a: object, **kw: object) -> None:
            self._s = real_stream(*a, **kw)

        def resample_chunk(self, x: np.ndarray) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return self._s.resample_chunk(x)

    def resample(*a: object, **kw: object) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return real_resample(*a, **kw)

    monkeypatch.setattr(convert.soxr, "ResampleStream", Stream)
    monkeypatch.setattr(convert.soxr, "resample", resample)
    player = Player(lambda: WavSink(tmp_path / "speaker.wav", 48000), jitter_ms=0)
    chunk = (np.sin(np.arange(2400) / 3) * 8000).astype("<i2").tobytes()
    for _ in range(5):
        player.play(chunk)  # the loop's side
    player.play(chunk, "prompt:beep")
    assert threads == [], "play() resampled on the caller's thread"
    assert player.buffered_ms() == pytest.approx(600, abs=1)
    player.start()  # only now: a running thread would already be playing it
    try:
        end = time.monotonic() + 3
        while player.buffered_ms() > 0 and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        player.stop()
    assert threads and set(threads) == {"pivox-playback"}, set(threads)
    assert player.stats.prompts_played == ["beep"]
