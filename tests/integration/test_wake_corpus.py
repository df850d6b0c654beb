"""Accuracy on the committed corpus (tests/wake_corpus, scripts/make-wake-corpus): each
engine must hear its shipped keywords at least as often, and wake by mistake no more
often, than it did when the floors below were measured. A model, resampler or decision
change that makes the speaker deafer or jumpier fails here, per keyword.

Floors are the measured counts with a margin of two files (positives out of 36 per
keyword: 12 clean, 12 at 10 dB SNR, 12 at 0 dB) and two false accepts, over 12.9 minutes
of negatives (near-misses, ordinary talk, household noise). Every detection floor is at
least 1, so each can fail; keywords an engine does not hear have none (CANNOT_HEAR).
The voices are espeak-ng's, so the figures say how the engines compare, not how they do
on a real person.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivox.wake.evaluate import evaluate

CORPUS = Path(__file__).parents[1] / "wake_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
# engine -> keyword -> (positives detected, false accepts) as measured
MEASURED = {
    "micro": {"okay_nabu": (14, 4), "hey_jarvis": (2, 1), "hey_mycroft": (11, 0),
              "alexa": (28, 4)},
    "openwakeword": {"okay_nabu": (10, 1), "hey_jarvis": (26, 3), "hey_mycroft": (0, 0),
                     "alexa": (15, 2), "hey_rhasspy": (23, 2)},
}
MARGIN = 2
# Keywords an engine all but never hears in these voices: a detection floor of the measured
# count minus the margin would be 0 or less, which no regression could break. Their false
# accepts are still bounded; their detection rate is left out, for the reason given.
CANNOT_HEAR = {
    ("micro", "hey_jarvis"): "2 of 36: espeak's voices score below the model's cutoff "
                             "(0 of 6 in the first trials as well)",
    ("openwakeword", "hey_mycroft"): "0 of 36: the model does not fire on espeak's voices",
}


def detection_floors(engine: str) -> dict[str, int]:
    return {kw: detected - MARGIN for kw, (detected, _) in MEASURED[engine].items()
            if (engine, kw) not in CANNOT_HEAR}


@pytest.fixture(scope="module", params=sorted(MEASURED))
def results(request) -> tuple[str, dict]:
    engine = request.param
    reports = evaluate(CORPUS, engine, list(MEASURED[engine]))
    return engine, {r.keyword: r.summary() for r in reports}


def test_the_corpus_is_what_the_issue_asks_for() -> None:
    files = MANIFEST["files"]
    for kw in ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy"):
        mine = [f for f in files if f.get("keyword") == kw]
        assert len({f["voice"] for f in mine}) >= 5 and len({f["speed"] for f in mine}) >= 2
        assert {f["condition"] for f in mine} == {"clean", "snr10", "snr0"}
    assert {f["kind"] for f in files} == {"positive", "near_miss", "speech", "noise"}
    negative_s = sum(f["duration_s"] for f in files if f["kind"] != "positive")
    assert negative_s >= 600
    for f in files:
        assert (CORPUS / f["path"]).is_file(), f["path"]


def test_every_floor_can_fail() -> None:
    """A floor of 0 detections passes for an engine that hears nothing: none may be that low,
    and each keyword is either floored or listed as unheard with a reason."""
    for engine, table in MEASURED.items():
        floors = detection_floors(engine)
        assert min(floors.values()) >= 1, (engine, floors)
        for kw in table:
            assert (kw in floors) != ((engine, kw) in CANNOT_HEAR), (engine, kw)
            if (engine, kw) in CANNOT_HEAR:  # listed only while it really cannot be floored
                assert table[kw][0] - MARGIN <= 0, (engine, kw, table[kw])


def test_detection_and_false_accept_floors(results: tuple[str, dict]) -> None:
    engine, by_kw = results
    floors = detection_floors(engine)
    missed = []
    for kw, (_, false_accepts) in MEASURED[engine].items():
        r = by_kw[kw]
        assert r["positives"] == 36 and r["negative_hours"] > 0.2, r
        if kw in floors and r["detected"] < floors[kw]:
            missed.append(f"{kw}: {r['detected']} of 36 heard, floor {floors[kw]}")
        if r["false_accepts"] > false_accepts + MARGIN:
            missed.append(f"{kw}: {r['false_accepts']} false accepts, "
                          f"ceiling {false_accepts + MARGIN}")
    assert not missed, f"{engine}: " + "; ".join(missed)


def test_ordinary_talk_and_noise_almost_never_wake(results: tuple[str, dict]) -> None:
    """Near-misses are hard by design; plain talk and household noise should not be."""
    engine, _ = results
    reports = evaluate(CORPUS / "negatives", engine, list(MEASURED[engine]))
    talk = sum(len(f.detections) for r in reports for f in r.files
               if not f.path.startswith("near_miss"))
    assert talk <= 1, engine
