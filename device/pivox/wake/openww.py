"""pyopen-wakeword: openWakeWord's models, offline (okay_nabu, hey_jarvis, hey_mycroft,
alexa, hey_rhasspy, or a custom openWakeWord .tflite).

The melspectrogram and embedding models are the expensive part and are shared by every
keyword; each keyword adds only its small classifier. The front end works in 80 ms steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

from pivox.core.wakeword import builtin, keyword_id
from pivox.wake.base import WakeSetupError

CUTOFF = 0.5  # openWakeWord's documented default threshold
_STATE_ARRAYS = ("audio", "mels")  # OpenWakeWordFeatures' streaming state
_STATE_COUNTS = ("new_audio_samples", "new_mels")


def _load(spec: str) -> OpenWakeWord:
    if builtin("openwakeword", spec):
        return OpenWakeWord.from_builtin(Model(spec))
    if not Path(spec).is_file():
        raise WakeSetupError(f"openwakeword model {spec} will not load: no such file")
    return OpenWakeWord.from_model(Path(spec))


class OpenWakeScorer:
    name = "openwakeword"

    def __init__(self, specs: Sequence[str]) -> None:
        self.keywords = tuple(keyword_id(s) for s in specs)
        self._models = {keyword_id(s): _load(s) for s in specs}
        self._features = OpenWakeWordFeatures.from_builtin()
        # The front end starts with 8 s of zeros to chew through (so a model can score
        # from the first frame): do it once now, not on the first microphone frame, and
        # keep that primed state to return to on reset.
        for _ in self.scores(bytes(2560)):
            pass
        self._primed = {k: getattr(self._features, k).copy() for k in _STATE_ARRAYS}
        self._primed_counts = {k: getattr(self._features, k) for k in _STATE_COUNTS}

    def default_cutoff(self, keyword: str) -> float:
        return CUTOFF

    def scores(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        for embedding in self._features.process_streaming(pcm):
            for kw, model in self._models.items():
                for prob in model.process_streaming(embedding):
                    yield kw, float(prob)

    def reset_keyword(self, keyword: str) -> None:
        self._models[keyword].reset()

    def reset(self) -> None:
        for model in self._models.values():
            model.reset()
        for k, v in self._primed.items():
            getattr(self._features, k)[:] = v
        for k, n in self._primed_counts.items():
            setattr(self._features, k, n)
