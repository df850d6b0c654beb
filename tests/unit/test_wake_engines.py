"""The real engines behind the Spotter: several keywords at once, stop words, custom model
files, and Porcupine's key handling (which needs no network to refuse a key)."""

from __future__ import annotations

import json
import logging
import shutil
import wave
from pathlib import Path

import numpy as np
import pymicro_wakeword
import pyopen_wakeword
import pytest

from pivox import config
from pivox.core.wakeword import BUILTIN
from pivox.wake import WakeSetupError, engine_for, make_engine
from pivox.wake.porcupine import read_access_key

RATE = 16000
FIXTURES = Path(__file__).parents[1] / "fixtures"
FAKE_KEY = "Zm9vYmFyLXNlY3JldC1rZXktdGhhdC1tdXN0LW5ldmVyLWJlLXByaW50ZWQ9PQ=="


def load(name: str) -> bytes:
    with wave.open(str(FIXTURES / name)) as w:
        return w.readframes(w.getnframes())


def room(seconds: float, seed: int = 0) -> bytes:
    noise = np.random.default_rng(seed).normal(0, 33, round(seconds * RATE))
    return np.round(noise).astype("<i2").tobytes()


NABU = load("wake_okay_nabu_en-us_140.wav")
JARVIS = room(0.5) + load("stop_hey_jarvis.wav") + room(0.8, 1)
LONDON = load("wake_negative_london.wav")


def feed(engine, pcm: bytes, frame: int = 640) -> list[tuple[str, float]]:
    hits = []
    for i in range(0, len(pcm), frame):
        kw = engine.process(pcm[i:i + frame])
        if kw:
            hits.append((kw, round((i + frame) / 2 / RATE, 2)))
    return hits


def test_micro_listens_for_several_keywords_at_once() -> None:
    engine = make_engine("micro", ["okay_nabu", "hey_jarvis"])
    hits = feed(engine, NABU + room(1.0) + JARVIS + LONDON)
    assert [k for k, _ in hits] == ["okay_nabu", "hey_jarvis"], hits
    assert hits[1][1] > len(NABU) / 2 / RATE  # each heard where it was said


def test_openwakeword_hears_its_keyword_and_not_other_speech() -> None:
    engine = make_engine("openwakeword", ["hey_jarvis", "hey_rhasspy"])
    assert feed(engine, LONDON + JARVIS)[0][0] == "hey_jarvis"
    quiet = make_engine("openwakeword", ["hey_jarvis", "hey_rhasspy"])
    assert feed(quiet, LONDON + NABU) == []


def test_openwakeword_reset_returns_to_a_ready_front_end() -> None:
    engine = make_engine("openwakeword", ["hey_jarvis"], refractory_s=0)
    feed(engine, JARVIS[: len(JARVIS) // 3])
    engine.reset()
    assert [k for k, _ in feed(engine, JARVIS)] == ["hey_jarvis"]


@pytest.mark.parametrize("engine", ["micro", "openwakeword"])
def test_a_stop_word_is_heard_only_while_armed(engine: str) -> None:
    spotter = make_engine(engine, ["okay_nabu"], stop=["hey_jarvis"], refractory_s=0)
    assert feed(spotter, JARVIS) == []
    spotter.stop_armed = True
    assert [k for k, _ in feed(spotter, JARVIS)] == ["hey_jarvis"]


def test_custom_micro_model_is_its_manifest_and_goes_by_its_stem(tmp_path: Path) -> None:
    models = Path(pymicro_wakeword.__file__).parent / "models"
    manifest = json.loads((models / "hey_jarvis.json").read_text())
    shutil.copy(models / "hey_jarvis.tflite", tmp_path / "computer_please.tflite")
    manifest.update(model="computer_please.tflite", wake_word="Computer please")
    (tmp_path / "computer_please.json").write_text(json.dumps(manifest))
    engine = make_engine("micro", [str(tmp_path / "computer_please.json")])
    assert engine.keywords == ("computer_please",)
    assert engine.cutoff == pytest.approx(manifest["micro"]["probability_cutoff"])
    assert [k for k, _ in feed(engine, JARVIS)] == ["computer_please"]


def test_custom_openwakeword_model_file(tmp_path: Path) -> None:
    src = Path(pyopen_wakeword.__file__).parent / "models" / "hey_jarvis.tflite"
    shutil.copy(src, tmp_path / "my_word.tflite")
    engine = make_engine("openwakeword", [str(tmp_path / "my_word.tflite")])
    assert [k for k, _ in feed(engine, JARVIS)] == ["my_word"]


def test_a_broken_custom_model_falls_back_rather_than_going_deaf(tmp_path: Path, caplog) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    wake = config.WakeConfig(keyword=str(bad))
    with caplog.at_level(logging.ERROR, "pivox.wake"):
        engine = engine_for(wake)
    assert engine.keywords == ("okay_nabu",) and "broken.json" in engine.fallback_reason
    assert [k for k, _ in feed(engine, NABU)] == ["okay_nabu"]


# ----------------------------------------------------------------------- Porcupine

def test_porcupine_keyword_list_matches_the_library() -> None:
    pvporcupine = pytest.importorskip("pvporcupine")
    assert set(BUILTIN["porcupine"]) == {k.replace(" ", "_") for k in pvporcupine.KEYWORDS}


def test_porcupine_without_a_key_falls_back_with_one_clear_line(caplog) -> None:
    wake = config.WakeConfig(engine="porcupine", keyword="porcupine")
    with caplog.at_level(logging.INFO, "pivox.wake"):
        engine = engine_for(wake, env={})
    assert engine.name == "micro" and engine.keywords == ("okay_nabu",)
    assert "PICOVOICE_ACCESS_KEY" in engine.fallback_reason
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "porcupine cannot start" in lines[0] and "okay_nabu" in lines[0]
    assert [k for k, _ in feed(engine, NABU)] == ["okay_nabu"]  # still hears


def test_a_rejected_porcupine_key_is_never_repeated(caplog, tmp_path: Path) -> None:
    pytest.importorskip("pvporcupine")
    with pytest.raises(WakeSetupError) as info:
        make_engine("porcupine", ["porcupine"], access_key=FAKE_KEY)
    err = info.value
    assert FAKE_KEY not in str(err) and FAKE_KEY not in repr(err)
    assert err.__cause__ is None and err.__suppress_context__  # no chained library text
    assert "refused" in str(err)
    keyfile = tmp_path / "picovoice"
    keyfile.write_text(FAKE_KEY + "\n")
    wake = config.WakeConfig(engine="porcupine", keyword="porcupine",
                             access_key_file=str(keyfile))
    with caplog.at_level(logging.DEBUG):
        engine = engine_for(wake, env={})
    assert engine.name == "micro" and "refused" in engine.fallback_reason
    assert FAKE_KEY not in caplog.text and FAKE_KEY[:12] not in caplog.text


def test_porcupine_not_installed_is_a_setup_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pvporcupine", None)
    with pytest.raises(WakeSetupError, match=r"pip install pivox\[porcupine\]"):
        make_engine("porcupine", ["porcupine"], access_key=FAKE_KEY)


def test_access_key_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("  abc  \n")
    assert read_access_key("PV", str(f), env={"PV": "env-key"}) == "abc"
    assert read_access_key("PV", "", env={"PV": "env-key"}) == "env-key"
    f.write_text("\n")
    with pytest.raises(WakeSetupError, match="empty"):
        read_access_key("PV", str(f), env={})
    with pytest.raises(WakeSetupError, match="unreadable"):
        read_access_key("PV", str(tmp_path / "missing"), env={})
    with pytest.raises(WakeSetupError, match=r"\$PV"):
        read_access_key("PV", "", env={})
