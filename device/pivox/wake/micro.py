"""pymicro-wakeword: the default, offline wake engine (about 0.2 % of a core here).

Its four bundled models are okay_nabu, hey_jarvis, hey_mycroft and alexa. The refractory
period is counted in audio samples, so one utterance wakes once whether audio arrives at
real time or faster.
"""

from __future__ import annotations

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

from pivox.audio.base import RATE

KEYWORDS = tuple(m.value for m in Model)


class MicroWakeEngine:
    name = "micro"

    def __init__(self, keyword: str = "okay_nabu", cutoff: float = 0.0,
                 refractory_s: float = 2.0) -> None:
        if keyword not in KEYWORDS:
            raise ValueError(f"micro wake engine has no keyword {keyword!r}; "
                             f"choose one of {', '.join(KEYWORDS)}")
        self.keywords = (keyword,)
        self._model = MicroWakeWord.from_builtin(Model(keyword))
        if cutoff:
            self._model.probability_cutoff = cutoff
        self.cutoff = self._model.probability_cutoff
        self._features = MicroWakeWordFeatures()
        self._refractory = int(refractory_s * RATE)
        self._samples = 0
        self._quiet_until = 0
        self.detections = 0

    def process(self, pcm: bytes) -> str | None:
        self._samples += len(pcm) // 2
        hit = False
        for features in self._features.process_streaming(pcm):
            if self._model.process_streaming(features):
                hit = True
        if not hit or self._samples < self._quiet_until:
            return None
        self._quiet_until = self._samples + self._refractory
        self.detections += 1
        self._model.reset()
        return self.keywords[0]

    def reset(self) -> None:
        self._model.reset()
        self._features.reset()
