"""pymicro-wakeword: the default, offline engine (about 0.2 % of a core here per keyword).

Ships okay_nabu, hey_jarvis, hey_mycroft and alexa; a custom microWakeWord model is its
JSON manifest (which names the .tflite beside it and carries the author's cutoff). All
keywords share one feature front end, so each extra keyword costs only its model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

from pivox.core.wakeword import builtin, keyword_id
from pivox.wake.base import WakeSetupError


def _load(spec: str) -> MicroWakeWord:
    if builtin("micro", spec):
        return MicroWakeWord.from_builtin(Model(spec))
    try:
        return MicroWakeWord.from_config(Path(spec))
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise WakeSetupError(f"micro model {spec} will not load: {exc}") from None


class MicroScorer:
    name = "micro"

    def __init__(self, specs: Sequence[str]) -> None:
        self.keywords = tuple(keyword_id(s) for s in specs)
        self._models = {keyword_id(s): _load(s) for s in specs}
        self._features = MicroWakeWordFeatures()
        self._windows = dict.fromkeys(self._models, 0)  # feature windows since a model ran

    def default_cutoff(self, keyword: str) -> float:
        return float(self._models[keyword].probability_cutoff)

    def scores(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        for features in self._features.process_streaming(pcm):
            for kw, model in self._models.items():
                prob = model.process_streaming_prob(features)
                # A model runs once per `stride` feature windows (30 ms) and answers 0.0
                # in between: only a real inference is news.
                self._windows[kw] += 1
                if prob is None or self._windows[kw] < model.stride:
                    continue
                self._windows[kw] = 0
                yield kw, prob

    def reset_keyword(self, keyword: str) -> None:
        self._models[keyword].reset()
        self._windows[keyword] = 0

    def reset(self) -> None:
        for kw in self._models:
            self.reset_keyword(kw)
        self._features.reset()
