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


def test_audio_being_converted_still_counts_as_queued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the playback thread resamples what was queued, the player must not read as
    empty: whoever waits for it to finish (an announcement, a test) would go on early."""
    converting, go = threading.Event(), threading.Event()
    real = convert.ToDevice.convert

    def slow(self: convert.ToDevice, *a: object, **kw: object) -> bytes:
        converting.set()
        go.wait(5)
        return real(self, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(convert.ToDevice, "convert", slow)
    player = Player(lambda: WavSink(tmp_path / "speaker.wav", 48000), jitter_ms=0)
    player.play(bytes(4800), "prompt:beep")
    player.start()
    try:
        assert converting.wait(5)
        during = player.buffered_ms()
    finally:
        go.set()
        player.stop()
    assert during == pytest.approx(100, abs=1), during
