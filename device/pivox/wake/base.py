"""The interfaces every wake engine plugs into.

An engine is split in two: a `Scorer` wraps one vendor library (its models over one shared
audio front end) and only turns audio into per-keyword scores; the `Spotter`
(pivox.wake.spotter) turns scores into detections the same way for every engine: cutoffs,
the refractory period, and stop words that count only while the speaker talks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class WakeSetupError(RuntimeError):
    """An engine cannot start here (package missing, key missing or rejected, model file
    unreadable). The message is fit for the journal and never holds a secret."""


class Scorer(Protocol):
    name: str  # engine name, e.g. "micro"
    keywords: tuple[str, ...]  # keyword ids, in the order given

    def default_cutoff(self, keyword: str) -> float:
        """The cutoff the model's author chose (used when the config leaves it at 0)."""
        ...

    def scores(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        """Feed 16 kHz s16le mono of any length; yield (keyword, probability) for every
        inference it completed, in time order."""
        ...

    def reset_keyword(self, keyword: str) -> None:
        """Forget what one keyword's model has seen (after it fired)."""
        ...

    def reset(self) -> None:
        """Forget all buffered audio and model state."""
        ...


class WakeEngine(Protocol):
    """Fed 16 kHz s16le mono in frames of any size; says when it heard a keyword.

    Runs in the capture thread: `process` must be cheap and never block.
    """

    name: str
    keywords: tuple[str, ...]  # wake words: heard whenever the microphone is live
    stop_keywords: tuple[str, ...]  # heard only while `stop_armed` (the speaker talks)
    stop_armed: bool
    fallback_reason: str  # why the configured engine is not the one running, or ""

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; return the keyword detected in it, or None."""
        ...

    def reset(self) -> None:
        """Forget buffered audio and probabilities (after a mute)."""
        ...
