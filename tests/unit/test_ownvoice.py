"""The speaker knows its own voice: a keyword it said itself is not a wake word, for the
time its echo can take to come back, and a keyword it did not say always is. The twin
does its work only when the microphone heard a keyword, never while the speaker plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pivox.audio.ownvoice import AFTER_S, OwnVoice
from pivox.audio.wavfile import read_wav
from pivox.wake import make_engine

FIXTURES = Path(__file__).parents[1] / "fixtures"
KEYWORD = FIXTURES / "wake_okay_nabu_en_160.wav"


def play(own: OwnVoice, wav: Path | None, at: float, seconds: float = 0.0) -> float:
    """Play a recording (or `seconds` of silence) through the speaker from `at`, as the
    playback thread gives it: 40 ms periods; returns its end."""
    pcm = (np.frombuffer(read_wav(wav), dtype=np.int16) if wav is not None
           else np.zeros(round(seconds * 16000), dtype=np.int16))
    for i in range(0, len(pcm), 640):
        own.listen(pcm[i : i + 640], at + i / 16000)
    return at + len(pcm) / 16000


class Counting:
    """The real engine, counting the audio it is given."""

    def __init__(self) -> None:
        self.engine = make_engine()
        self.stop_armed = False
        self.calls = 0

    def process(self, pcm: bytes) -> str | None:
        self.calls += 1
        return self.engine.process(pcm)

    def reset(self) -> None:
        self.engine.reset()


def test_a_keyword_the_speaker_said_is_its_own_for_as_long_as_its_echo_lasts() -> None:
    own = OwnVoice(make_engine())
    end = play(own, KEYWORD, at=100.0)
    assert own.explains(end + 0.2)  # its echo, heard by the microphone
    assert own.said == 1
    assert 100.0 < own.said_at <= end
    play(own, None, end, seconds=AFTER_S + 0.5)
    assert not own.explains(own.said_at + AFTER_S + 0.1)  # later: the user saying it


def test_other_speech_from_the_speaker_explains_nothing() -> None:
    own = OwnVoice(make_engine())
    end = play(own, FIXTURES / "wake_negative_london.wav", at=100.0)
    assert not own.explains(end)
    assert own.said == 0


def test_a_keyword_the_speaker_said_long_ago_explains_nothing() -> None:
    own = OwnVoice(make_engine())
    end = play(own, KEYWORD, at=100.0)
    end = play(own, FIXTURES / "wake_negative_london.wav", at=end)  # it talked on
    assert not own.explains(end + 0.2)


def test_the_twin_is_idle_while_the_speaker_plays() -> None:
    """Hearing a whole reply as it plays costs a small board a core's worth of wake-ups;
    the twin hears only when asked, and only the last few seconds."""
    engine = Counting()
    own = OwnVoice(engine)  # type: ignore[arg-type]
    end = 100.0
    for _ in range(5):
        end = play(own, FIXTURES / "wake_negative_london.wav", at=end)
    end = play(own, KEYWORD, at=end)
    assert engine.calls == 0
    assert own.explains(end + 0.2)
    assert 0 < engine.calls * 0.04 <= 5.0  # seconds of audio heard


def test_a_silent_speaker_answers_without_the_twin() -> None:
    """The wake word in a quiet house: nothing played lately, so nothing to hear."""
    engine = Counting()
    own = OwnVoice(engine)  # type: ignore[arg-type]
    end = play(own, KEYWORD, at=100.0)
    end = play(own, None, at=end, seconds=5.0)
    assert not own.explains(end)
    assert engine.calls == 0


def test_a_failing_twin_says_so_once_and_explains_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        stop_armed = False

        def process(self, pcm: bytes) -> str | None:
            raise RuntimeError("model file corrupt")

        def reset(self) -> None:
            pass

    own = OwnVoice(Broken())  # type: ignore[arg-type]
    play(own, KEYWORD, at=100.0)
    assert not own.explains(101.0)
    play(own, KEYWORD, at=102.0)
    assert not own.explains(103.0)
    assert own.failed
    assert sum("own-voice engine failed" in r.getMessage() for r in caplog.records) == 1
