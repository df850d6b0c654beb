"""pymicro-wakeword: the default, offline wake engine (about 0.2 % of a core here).

Its four bundled models are okay_nabu, hey_jarvis, hey_mycroft and alexa. The refractory
period is counted in audio samples, not wall time, so one utterance wakes once whether
audio arrives at real time (a microphone) or faster (a file, a test).
"""

from __future__ import annotations

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

from pivox.audio.base import RATE

KEYWORDS = tuple(m.value for m in Model)


class MicroWakeEngine:
    """One pymicro-wakeword model, fed 16 kHz s16le mono in frames of any size."""

    name = "micro"

    def __init__(self, keyword: str = "okay_nabu", cutoff: float = 0.0,
                 refractory_s: float = 2.0) -> None:
        """`cutoff` 0 keeps the model's own threshold (okay_nabu: 0.85), which its
        author tuned against false accepts; raise it to make waking stricter."""
        if keyword not in KEYWORDS:
            raise ValueError(f"micro wake engine has no keyword {keyword!r}; "
                             f"choose one of {', '.join(KEYWORDS)}")
        if not 0.0 <= cutoff < 1.0:
            raise ValueError(f"wake cutoff must be in [0, 1) (0 = the model's own), "
                             f"got {cutoff}")
        if refractory_s < 0:
            raise ValueError(f"wake refractory_s must be >= 0, got {refractory_s}")
        self.keywords: tuple[str, ...] = (keyword,)
        self._model = MicroWakeWord.from_builtin(Model(keyword))
        self.cutoff: float = cutoff or float(self._model.probability_cutoff)
        self.refractory_s = refractory_s
        self._features = MicroWakeWordFeatures()
        self._refractory = round(refractory_s * RATE)
        self._windows = 0  # feature windows since the model last ran
        self._samples = 0  # audio fed so far: the engine's own clock
        self._quiet_until = 0  # sample count before which detections are ignored
        self.detections = 0
        # Sliding-window mean the model last reported, and the highest since the last
        # detection: for status and for tuning the cutoff on a real room.
        self.last_probability = 0.0
        self.peak_probability = 0.0

    @property
    def audio_s(self) -> float:
        """Seconds of audio processed, the time base of the refractory period."""
        return self._samples / RATE

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; return the keyword once per utterance, else None."""
        self._samples += len(pcm) // 2
        hit = False
        for features in self._features.process_streaming(pcm):
            prob = self._model.process_streaming_prob(features)
            # The model runs once per `stride` feature windows (30 ms) and answers 0.0 in
            # between: only a real inference is news.
            self._windows += 1
            if prob is None or self._windows < self._model.stride:
                continue
            self._windows = 0
            self.last_probability = prob
            self.peak_probability = max(self.peak_probability, prob)
            hit = hit or prob > self.cutoff
        if not hit:
            return None
        # The model's sliding window still holds this utterance: start afresh, also for a
        # hit inside the refractory period, or that hit would wake late, the moment the
        # period ends.
        self._model.reset()
        self._windows = 0
        if self._samples < self._quiet_until:
            return None
        self._quiet_until = self._samples + self._refractory
        self.detections += 1
        self.peak_probability = 0.0
        return self.keywords[0]

    def reset(self) -> None:
        """Forget buffered audio and probabilities; the refractory period still holds."""
        self._model.reset()
        self._features.reset()
        self._windows = 0
        self.last_probability = 0.0
