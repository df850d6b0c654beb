"""Scores in, detections out: the part of wake-word spotting every engine shares.

The refractory period is counted in audio samples, not wall time, so one utterance wakes
once whether audio arrives at real time (a microphone) or faster (a file, a test). It is
shared by all keywords: one utterance that two models both like is still one event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pivox.core.formats import MIC_RATE
from pivox.wake import timing
from pivox.wake.base import Scorer


class Spotter:
    def __init__(self, scorer: Scorer, wake: Sequence[str], stop: Sequence[str] = (),
                 cutoffs: Mapping[str, float] | None = None, cutoff: float = 0.0,
                 refractory_s: float = 2.0) -> None:
        """`wake` and `stop` are keyword ids of `scorer`. A keyword's cutoff is
        `cutoffs[kw]`, else `cutoff`, else (0) the cutoff its model's author chose."""
        unknown = [k for k in (*wake, *stop) if k not in scorer.keywords]
        if unknown or not wake:
            raise ValueError(f"{scorer.name} has no keyword {unknown or wake!r}")
        for kw, value in {"": cutoff, **(cutoffs or {})}.items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"wake cutoff{' for ' + kw if kw else ''} must be in [0, 1) "
                                 f"(0 = the model's own), got {value}")
        if refractory_s < 0:
            raise ValueError(f"wake refractory_s must be >= 0, got {refractory_s}")
        self.scorer = scorer
        self.name = scorer.name
        self.keywords = tuple(wake)
        self.stop_keywords = tuple(k for k in stop if k not in self.keywords)
        self.stop_armed = False  # set from the loop; read in the capture thread
        self.fallback_reason = ""
        self.cutoffs = {k: (cutoffs or {}).get(k) or cutoff or scorer.default_cutoff(k)
                        for k in (*self.keywords, *self.stop_keywords)}
        self.refractory_s = refractory_s
        self._refractory = round(refractory_s * MIC_RATE)
        self._samples = 0  # audio fed so far: the spotter's own clock
        self._quiet_until = 0  # sample count before which detections are ignored
        self.detections = 0
        # The score each keyword last had, and its highest since its last detection: for
        # status, and for tuning a cutoff in a real room.
        self.last_probability = dict.fromkeys(self.cutoffs, 0.0)
        self.peak_probability = dict.fromkeys(self.cutoffs, 0.0)

    def lag_s(self, keyword: str) -> tuple[float, float]:
        """(earliest, latest) seconds this engine fires after `keyword` ends (wake.timing)."""
        return timing.lag_s(self.name, keyword)

    @property
    def cutoff(self) -> float:
        return self.cutoffs[self.keywords[0]]

    @property
    def audio_s(self) -> float:
        """Seconds of audio processed, the time base of the refractory period."""
        return self._samples / MIC_RATE

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; return a keyword once per utterance, else None."""
        return self.observe(len(pcm) // 2, self.scorer.scores(pcm))

    def observe(self, samples: int, scores: Iterable[tuple[str, float]]) -> str | None:
        """Decide on scores the scorer gave for `samples` more audio. Several spotters can
        share one scorer's pass this way (each minding its own keywords)."""
        self._samples += samples
        hit: str | None = None
        for kw, prob in scores:
            cut = self.cutoffs.get(kw)
            if cut is None:
                continue
            self.last_probability[kw] = prob
            if prob > self.peak_probability[kw]:
                self.peak_probability[kw] = prob
            if prob > cut and hit is None and (kw in self.keywords or self.stop_armed):
                hit = kw
        if hit is None:
            return None
        # The model's window still holds this utterance: start it afresh, also for a hit
        # inside the refractory period, or that hit would fire late, the moment it ends.
        self.scorer.reset_keyword(hit)
        if self._samples < self._quiet_until:
            return None
        self._quiet_until = self._samples + self._refractory
        self.detections += 1
        self.peak_probability[hit] = 0.0
        return hit

    def reset(self) -> None:
        """Forget buffered audio and scores; the refractory period still holds."""
        self.scorer.reset()
        for kw in self.last_probability:
            self.last_probability[kw] = 0.0
