"""The speaker knows its own voice: a keyword it said itself is not a wake word, for the
time its echo can take to come back, and a keyword it did not say always is."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pivox.audio.ownvoice import AFTER_S, OwnVoice
from pivox.audio.wavfile import read_wav
from pivox.wake import make_engine

FIXTURES = Path(__file__).parents[1] / "fixtures"


def speak(own: OwnVoice, wav: Path, at: float, period: int = 320,
          feed: Callable[[np.ndarray, float], None] | None = None) -> float:
    """Play a recording through the speaker from `at` in periods of `period` samples, to
    `feed` (the twin's engine directly by default); returns its end."""
    pcm = np.frombuffer(read_wav(wav), dtype=np.int16)
    for i in range(0, len(pcm), period):
        (feed or own.hear)(pcm[i : i + period], at + i / 16000)
    return at + len(pcm) / 16000


def test_a_keyword_the_speaker_said_is_its_own_for_as_long_as_its_echo_lasts() -> None:
    own = OwnVoice(make_engine())
    end = speak(own, FIXTURES / "wake_okay_nabu_en_160.wav", at=100.0)
    assert own.said == 1
    assert 100.0 < own.said_at <= end
    assert own.explains(own.said_at + 0.2)  # its echo, heard by the microphone
    assert not own.explains(own.said_at + AFTER_S + 0.1)  # later: the user saying it


def test_other_speech_from_the_speaker_explains_nothing() -> None:
    own = OwnVoice(make_engine())
    end = speak(own, FIXTURES / "wake_negative_london.wav", at=100.0)
    assert own.said == 0
    assert not own.explains(end)


def play(own: OwnVoice, wav: Path, at: float) -> float:
    """As the playback thread gives it: `listen`, 40 ms periods; returns the end."""
    return speak(own, wav, at, 640, own.listen)


def test_the_answer_never_waits_on_the_twins_own_thread() -> None:
    """The twin's thread is not running (or is far behind): asked about a keyword, it first
    hears what is still waiting, so its own keyword is still its own."""
    own = OwnVoice(make_engine())
    play(own, FIXTURES / "wake_okay_nabu_en_160.wav", at=100.0)
    assert own.said == 0  # nothing heard yet: it all waits in the backlog
    assert own.explains(101.0)
    assert own.said == 1


def test_the_twins_thread_hears_what_is_played_in_batches() -> None:
    own = OwnVoice(make_engine())
    own.start()
    try:
        # Played faster than real time, as much as the backlog holds (BACKLOG_S).
        end = play(own, FIXTURES / "wake_okay_nabu_en_160.wav", at=100.0)
        own.listen(np.zeros(int(16000 * (101.9 - end)), dtype=np.int16), end)
        deadline = time.monotonic() + 5
        while own.said == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert own.said == 1, "the twin's thread did not hear the speaker's keyword"
    finally:
        own.stop()


def test_a_failing_twin_says_so_once_and_explains_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        stop_armed = False

        def process(self, pcm: bytes) -> str | None:
            raise RuntimeError("model file corrupt")

    own = OwnVoice(Broken())  # type: ignore[arg-type]
    play(own, FIXTURES / "wake_okay_nabu_en_160.wav", at=100.0)
    assert not own.explains(101.0)
    play(own, FIXTURES / "wake_okay_nabu_en_160.wav", at=102.0)
    assert not own.explains(103.0)
    assert own.failed
    assert sum("own-voice engine failed" in r.getMessage() for r in caplog.records) == 1
