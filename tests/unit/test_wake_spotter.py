"""The Spotter's decisions, the same for every engine: cutoffs per keyword, one wake per
utterance across keywords, and stop words that count only while the speaker talks.

The scorer here is a script of scores: the Spotter's input is exactly that, whichever
library produced it, and the real engines are exercised in test_wake_engines.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pivox.wake.spotter import Spotter

FRAME = 640  # 20 ms


class ScriptedScorer:
    """Yields, for the n-th frame fed, the scores in script[n]."""

    name = "scripted"

    def __init__(self, script: list[dict[str, float]], keywords=("a", "b", "stop")) -> None:
        self.keywords = tuple(keywords)
        self.script = script
        self.n = 0
        self.resets: list[str] = []

    def default_cutoff(self, keyword: str) -> float:
        return 0.8

    def scores(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        frame = self.script[self.n] if self.n < len(self.script) else {}
        self.n += 1
        yield from frame.items()

    def reset_keyword(self, keyword: str) -> None:
        self.resets.append(keyword)

    def reset(self) -> None:
        self.resets.append("*")


def run(spotter: Spotter, frames: int) -> list[tuple[int, str]]:
    return [(i, kw) for i in range(frames) if (kw := spotter.process(bytes(FRAME)))]


def test_each_keyword_has_its_own_cutoff_and_the_default_is_the_models() -> None:
    script = [{"a": 0.85}, {}, {}, {"b": 0.85}]
    sp = Spotter(ScriptedScorer(script), ["a", "b"], cutoffs={"b": 0.9}, refractory_s=0)
    assert sp.cutoffs == {"a": 0.8, "b": 0.9}
    assert run(sp, 4) == [(0, "a")]
    assert sp.peak_probability["b"] == 0.85  # heard, held back by its cutoff


def test_one_utterance_wakes_once_even_when_two_keywords_like_it() -> None:
    script = [{"a": 0.9, "b": 0.95}, {"b": 0.95}, {"a": 0.9}]
    sp = Spotter(ScriptedScorer(script), ["a", "b"], refractory_s=1.0)
    assert run(sp, 3) == [(0, "a")]
    assert sp.detections == 1


def test_refractory_is_counted_in_audio_and_resets_the_model_that_fired() -> None:
    script = [{"a": 0.9}] + [{}] * 49 + [{"a": 0.9}] + [{}] * 49 + [{"a": 0.9}]
    scorer = ScriptedScorer(script)
    sp = Spotter(scorer, ["a"], refractory_s=1.5)  # 75 frames
    assert run(sp, 101) == [(0, "a"), (100, "a")]
    assert scorer.resets == ["a", "a", "a"]  # also inside the period: no late wake


def test_a_stop_word_counts_only_while_armed() -> None:
    script = [{"stop": 0.99}] * 3
    sp = Spotter(ScriptedScorer(script), ["a"], stop=["stop"], refractory_s=0)
    assert sp.process(bytes(FRAME)) is None
    sp.stop_armed = True
    assert sp.process(bytes(FRAME)) == "stop"
    sp.stop_armed = False
    assert sp.process(bytes(FRAME)) is None
    assert sp.stop_keywords == ("stop",) and sp.keywords == ("a",)


def test_several_spotters_can_share_one_scorers_pass() -> None:
    scorer = ScriptedScorer([{"a": 0.9, "b": 0.9}])
    a, b = Spotter(scorer, ["a"], refractory_s=0), Spotter(scorer, ["b"], refractory_s=0)
    scores = list(scorer.scores(bytes(FRAME)))
    assert a.observe(320, scores) == "a" and b.observe(320, scores) == "b"


@pytest.mark.parametrize(("kw", "message"), [
    ({"wake": ["zzz"]}, "no keyword"),
    ({"wake": []}, "no keyword"),
    ({"wake": ["a"], "cutoff": 1.0}, "cutoff"),
    ({"wake": ["a"], "cutoffs": {"b": -0.1}}, "cutoff for b"),
    ({"wake": ["a"], "refractory_s": -1}, "refractory"),
])
def test_bad_settings_are_refused(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Spotter(ScriptedScorer([]), **kw)
