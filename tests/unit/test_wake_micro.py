"""The pymicro-wakeword engine on recorded speech: it wakes on the keyword, once, on time.

The recordings are espeak-ng speech over quiet room noise (scripts/make-fixtures), fed
in 20 ms frames as the capture thread does, far faster than real time, which is why the
refractory period must be counted in samples.
"""

from __future__ import annotations

import io
import json
import wave
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
import pytest
from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

from pivox.core.wakeword import BUILTIN
from pivox.wake import make_engine
from pivox.wake.spotter import Spotter

KEYWORDS = BUILTIN["micro"]


def MicroWakeEngine(keyword: str = "okay_nabu", cutoff: float = 0.0,
                    refractory_s: float = 2.0) -> Spotter:
    return make_engine("micro", [keyword], cutoff=cutoff, refractory_s=refractory_s)

RATE = 16000
FRAME = 640  # 20 ms of s16le mono
FIXTURES = Path(__file__).parents[1] / "fixtures"
WAKE = json.loads((FIXTURES / "wake_fixtures.json").read_text(encoding="utf-8"))
POSITIVES = sorted(name for name, meta in WAKE.items() if meta["keyword"])
NEGATIVES = sorted(name for name, meta in WAKE.items() if not meta["keyword"])
DATA = resources.files("pivox") / "data"
DEMO = json.loads((DATA / "demo_mic.json").read_text(encoding="utf-8"))


def load(path: Path | Traversable) -> bytes:
    with wave.open(io.BytesIO(path.read_bytes()), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (RATE, 2, 1)
        return w.readframes(w.getnframes())


def feed(engine: Spotter, pcm: bytes, frame: int = FRAME) -> list[tuple[str, float]]:
    """Every detection with the audio time (end of the frame that carried it)."""
    hits = []
    for i in range(0, len(pcm), frame):
        chunk = pcm[i : i + frame]
        keyword = engine.process(chunk)
        if keyword:
            hits.append((keyword, (i + len(chunk)) / (2 * RATE)))
    return hits


def room(seconds: float, seed: int = 0) -> bytes:
    """Quiet room noise like the recordings' own (about -60 dBFS)."""
    noise = np.random.default_rng(seed).normal(0, 33, round(seconds * RATE))
    return np.round(noise).astype("<i2").tobytes()


@pytest.mark.parametrize("name", POSITIVES)
def test_wakes_once_on_each_voice_soon_after_the_keyword(name: str):
    meta = WAKE[name]
    engine = MicroWakeEngine(meta["keyword"])
    hits = feed(engine, load(FIXTURES / name))
    assert [k for k, _ in hits] == [meta["keyword"]], hits
    t = hits[0][1]
    assert meta["speech_start_s"] < t < meta["speech_end_s"] + 1.0, (t, meta)
    assert engine.detections == 1


def test_demo_recording_wakes_once_before_the_question_ends():
    engine = MicroWakeEngine(DEMO["keyword"])
    hits = feed(engine, load(DATA / "demo_mic.wav"))
    assert [k for k, _ in hits] == [DEMO["keyword"]], hits
    t = hits[0][1]
    assert DEMO["keyword_start_s"] < t < DEMO["keyword_end_s"] + 1.0, (t, DEMO)
    assert t < DEMO["speech_end_s"]  # a wake after the question would lose the question


def test_demo_manifest_matches_the_recording():
    pcm = np.frombuffer(load(DATA / "demo_mic.wav"), dtype="<i2").astype(float)
    assert DEMO["duration_s"] == pytest.approx(len(pcm) / RATE, abs=1e-3)
    order = ["keyword_start_s", "keyword_end_s", "speech_start_s", "speech_end_s",
             "duration_s"]
    assert [DEMO[k] for k in order] == sorted(DEMO[k] for k in order)

    def dbfs(a: float, b: float) -> float:
        seg = pcm[round(a * RATE) : round(b * RATE)]
        return 20 * np.log10(np.sqrt(np.mean(seg**2)) / 32768)

    assert -65 < dbfs(0, DEMO["keyword_start_s"]) < -55  # room noise, not digital silence
    assert dbfs(DEMO["keyword_start_s"], DEMO["keyword_end_s"]) > -35  # speech
    assert dbfs(DEMO["keyword_end_s"], DEMO["speech_start_s"]) < -55  # the pause
    assert dbfs(DEMO["speech_start_s"], DEMO["speech_end_s"]) > -35


@pytest.mark.parametrize("keyword", KEYWORDS)
@pytest.mark.parametrize("name", NEGATIVES)
def test_no_keyword_no_wake(name: str, keyword: str):
    engine = MicroWakeEngine(keyword)
    assert feed(engine, load(FIXTURES / name)) == []
    assert engine.peak_probability[keyword] < engine.cutoff


def speech(name: str) -> bytes:
    """Just the spoken part of a fixture, without its room noise."""
    meta, pcm = WAKE[name], load(FIXTURES / name)
    return pcm[round(meta["speech_start_s"] * RATE) * 2 : round(meta["speech_end_s"] * RATE) * 2]


@pytest.mark.parametrize("refractory_s", [0.0, 2.0])
def test_one_utterance_wakes_once_though_many_inferences_score_above_the_cutoff(
        refractory_s: float):
    model, features = MicroWakeWord.from_builtin(Model("okay_nabu")), MicroWakeWordFeatures()
    pcm = load(FIXTURES / POSITIVES[0])
    scores = [model.process_streaming_prob(f) for f in features.process_streaming(pcm)]
    assert sum(s > model.probability_cutoff for s in scores) >= 3  # the bare model repeats
    engine = MicroWakeEngine(refractory_s=refractory_s)
    assert len(feed(engine, pcm)) == 1


@pytest.mark.parametrize(("gap_s", "refractory_s", "wakes"), [
    (0.3, 0.0, 2),  # the second "Okay Nabu" is heard 1.24 s of audio after the first
    (0.3, 1.0, 2),
    (0.3, 1.5, 1),  # inside the refractory period: the same wake
    (1.0, 1.5, 2),  # 1.92 s apart
    (1.0, 2.0, 1),
    (2.5, 2.0, 2),
])
def test_refractory_period_is_counted_in_audio_and_never_delays_a_wake(
        gap_s: float, refractory_s: float, wakes: int):
    pcm = room(0.3) + speech(POSITIVES[0]) + room(gap_s, 1) + speech(POSITIVES[0]) + room(0.7)
    unlimited = feed(MicroWakeEngine(refractory_s=0.0), pcm)
    hits = feed(MicroWakeEngine(refractory_s=refractory_s), pcm)
    assert len(hits) == wakes, hits
    assert set(hits) <= set(unlimited)  # a wake is on time or not at all


@pytest.mark.parametrize("frame", [2, 320, 640, 1000, 32000, 10**7])
def test_frame_size_does_not_change_what_is_heard(frame: int):
    """Capture frames may be 10, 20 or 32 ms, or a whole file: the answer is the same."""
    pcm = load(FIXTURES / POSITIVES[0]) + room(0.3) + load(FIXTURES / NEGATIVES[0])
    hits = feed(MicroWakeEngine(), pcm, frame)
    assert [k for k, _ in hits] == ["okay_nabu"], hits
    assert hits[0][1] < WAKE[POSITIVES[0]]["duration_s"] + frame / (2 * RATE)


def test_cutoff_zero_keeps_the_models_own_and_a_high_cutoff_suppresses_waking():
    assert MicroWakeEngine().cutoff == pytest.approx(0.85)
    strict = MicroWakeEngine(cutoff=0.99)
    assert feed(strict, load(FIXTURES / POSITIVES[0])) == []
    assert strict.peak_probability["okay_nabu"] > 0.85  # heard it; the cutoff is what held it back


def test_reset_forgets_probabilities_and_still_wakes_afterwards():
    engine = MicroWakeEngine(refractory_s=0.0)
    pcm = load(FIXTURES / POSITIVES[0])
    feed(engine, pcm[: len(pcm) // 2])
    engine.reset()
    assert engine.last_probability == {"okay_nabu": 0.0}
    assert len(feed(engine, pcm)) == 1


def test_factory_builds_the_engine_the_daemon_asks_for():
    engine = make_engine("micro", ["hey_jarvis"], refractory_s=1.5)
    assert engine.name == "micro" and engine.keywords == ("hey_jarvis",)
    assert engine.cutoff == pytest.approx(0.97) and engine.refractory_s == 1.5


@pytest.mark.parametrize(("call", "message"), [
    (lambda: make_engine("porcupine9", ["okay_nabu"]), "unknown wake engine"),
    (lambda: make_engine("micro", ["hey_siri"]), "no keyword 'hey_siri'"),
    (lambda: MicroWakeEngine("computer"), "okay_nabu, hey_jarvis"),
    (lambda: MicroWakeEngine(cutoff=1.5), "cutoff"),
    (lambda: MicroWakeEngine(refractory_s=-1), "refractory"),
])
def test_bad_choices_are_refused_with_the_choices_named(call, message: str):
    with pytest.raises(ValueError, match=message):
        call()
