"""The speech detector's level gate: below it a step is quiet whatever the model would say,
and is not given to the model at all (its 10 ms steps are the capture thread's costliest);
above it the model decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pivox.audio import vad as vad_mod
from pivox.audio.vad import SpeechDetector
from pivox.audio.wavfile import read_wav

QUESTION = read_wav(Path(__file__).parents[1] / "fixtures" / "question_16k.wav")


def hum(seconds: float, dbfs: float) -> bytes:
    n = int(16000 * seconds)
    x = np.random.default_rng(3).normal(0, 32768 * 10 ** (dbfs / 20), n)
    return np.clip(x, -32768, 32767).astype(np.int16).tobytes()


def test_a_quiet_room_is_quiet_without_asking_the_model() -> None:
    vad = SpeechDetector()
    vad.prime()
    vad.min_dbfs = -50.0
    assert vad.process(hum(2.0, -65.0)) is None
    assert vad.unasked == 200


def test_speech_above_the_gate_is_still_heard() -> None:
    vad = SpeechDetector()
    vad.prime()
    vad.min_dbfs = -50.0
    edges = [vad.process(QUESTION[i : i + 640]) for i in range(0, len(QUESTION), 640)]
    assert "start" in edges
    assert vad.unasked < len(QUESTION) // 320  # the words themselves went to the model


REAL_VAD = vad_mod.MicroVad


class CountingVad:
    """pymicro-vad's detector, counting the model steps it is asked for."""

    steps = 0

    def __init__(self) -> None:
        self._vad = REAL_VAD()

    def process_10ms(self, pcm: bytes) -> float:
        CountingVad.steps += 1
        return float(self._vad.process_10ms(pcm))

    def reset(self) -> None:
        self._vad.reset()


def probabilities(vad: SpeechDetector) -> list[float]:
    out = []
    for i in range(0, len(QUESTION), 320):
        vad.process(QUESTION[i : i + 320])
        out.append(vad.last_probability)
    return out


def test_a_detector_warmed_ahead_hears_as_one_primed_at_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vad_mod, "MicroVad", CountingVad)
    at_once = SpeechDetector()
    at_once.prime()
    ahead = SpeechDetector()
    while not ahead.warmed:
        ahead.warm(2)
    CountingVad.steps = 0
    ahead.prime()
    assert CountingVad.steps == 0  # ready at once: no burst of model steps
    assert probabilities(ahead) == probabilities(at_once)


def test_each_stream_starts_on_a_fresh_detector() -> None:
    """The last conversation's voice is not in the next one's detector."""
    vad = SpeechDetector()
    vad.prime()
    first = probabilities(vad)
    vad.prime()
    assert probabilities(vad) == first
