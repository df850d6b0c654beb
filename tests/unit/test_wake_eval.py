"""`pivox wake eval` on small folders built from the fixtures: per-file detections with
times, detection rate and false accepts per hour, any WAV format, and clear errors."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from pivox.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
POSITIVES = ["wake_okay_nabu_en-us_140.wav", "wake_okay_nabu_en_160.wav"]


def stereo_44k(src: Path, dst: Path) -> None:
    """The same recording as a phone might save it: 44.1 kHz stereo."""
    import soxr

    with wave.open(str(src)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)
    y = np.round(soxr.resample(x, 16000, 44100)).astype("<i2")
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.repeat(y[:, None], 2, axis=1).tobytes())


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    pos = tmp_path / "positives" / "okay_nabu"
    neg = tmp_path / "negatives"
    pos.mkdir(parents=True)
    neg.mkdir()
    for name in POSITIVES:
        shutil.copy(FIXTURES / name, pos / name)
    stereo_44k(FIXTURES / POSITIVES[0], pos / "phone.wav")
    shutil.copy(FIXTURES / "wake_negative_london.wav", neg / "london.wav")
    shutil.copy(FIXTURES / "question_16k.wav", neg / "question.wav")
    return tmp_path


def run_json(capsys, *args: str) -> dict:
    assert main(["wake", "eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_positives_and_negatives_give_rate_and_false_accepts(corpus: Path, capsys) -> None:
    r = run_json(capsys, str(corpus))
    assert (r["engine"], r["keyword"], r["cutoff"]) == ("micro", "okay_nabu", 0.85)
    assert r["positives"] == 3 and r["detected"] == 3 and r["detection_rate"] == 1.0
    assert r["false_accepts"] == 0 and r["negatives"] == 2
    assert r["negative_hours"] == pytest.approx((2.45 + 2.04) / 3600, rel=0.1)
    assert 0 < r["cpu_percent"] < 50
    phone = next(f for f in r["files"] if f["path"].endswith("phone.wav"))
    assert phone["detections"][0]["keyword"] == "okay_nabu"
    assert 1.0 < phone["detections"][0]["t"] < phone["seconds"]


def test_a_strict_cutoff_misses_and_the_text_report_says_so(corpus: Path, capsys) -> None:
    assert main(["wake", "eval", str(corpus), "--cutoff", "0.99"]) == 0
    out = capsys.readouterr().out
    assert "MISSED" in out and "detected 0/3 positives" in out


def test_several_keywords_in_one_pass(corpus: Path, capsys) -> None:
    r = run_json(capsys, str(corpus), "--keyword", "okay_nabu", "--keyword", "alexa",
                 "--no-files")
    by_kw = {x["keyword"]: x for x in r["results"]}
    assert by_kw["okay_nabu"]["detected"] == 3
    assert by_kw["alexa"]["positives"] == 0  # no positives/alexa/: only negatives count
    assert by_kw["alexa"]["false_accepts"] == 0


def test_a_plain_folder_lists_detections_per_file(corpus: Path, capsys) -> None:
    r = run_json(capsys, str(corpus / "positives" / "okay_nabu"))
    assert [f["kind"] for f in r["files"]] == ["file"] * 3
    assert all(f["detections"] for f in r["files"])


def test_an_unreadable_file_is_reported_and_the_rest_still_counts(corpus: Path,
                                                                   capsys) -> None:
    (corpus / "negatives" / "broken.wav").write_text("not audio")
    r = run_json(capsys, str(corpus))
    assert r["unreadable"] == ["negatives/broken.wav"] and r["detected"] == 3


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/dir"], "not a folder"),
    (["{empty}"], "no .wav files"),
    (["{empty}", "--keyword", "hey_siri"], "no keyword 'hey_siri'"),
])
def test_bad_arguments_exit_2_with_the_reason(tmp_path: Path, capsys, args, message) -> None:
    args = [a.format(empty=tmp_path) for a in args]
    assert main(["wake", "eval", *args]) == 2
    assert message in capsys.readouterr().err
