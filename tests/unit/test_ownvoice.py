"""The speaker knows its own voice: a keyword it said itself is not a wake word, for the
time its echo can take to come back, and a keyword it did not say always is."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pivox.audio.ownvoice import AFTER_S, OwnVoice
from pivox.audio.wavfile import read_wav
from pivox.wake import make_engine

FIXTURES = Path(__file__).parents[1] / "fixtures"


def speak(own: OwnVoice, wav: Path, at: float) -> float:
    """Play a recording through the speaker from `at`, in 20 ms periods; returns its end."""
    pcm = np.frombuffer(read_wav(wav), dtype=np.int16)
    for i in range(0, len(pcm), 320):
        own.hear(pcm[i : i + 320], at + i / 16000)
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
