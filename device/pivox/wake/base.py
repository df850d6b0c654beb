"""The interfaces every wake engine plugs into (what the capture thread sees of one,
`WakeEngine`, is in pivox.core.wakeword, so audio/ need not import wake/).

An engine is split in two: a `Scorer` wraps one vendor library (its models over one shared
audio front end) and only turns audio into per-keyword scores; the `Spotter`
(pivox.wake.spotter) turns scores into detections the same way for every engine: cutoffs,
the refractory period, and stop words that count only while the speaker talks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from pivox.core.wakeword import WakeEngine

__all__ = ["Scorer", "WakeEngine", "WakeSetupError"]  # WakeEngine: defined in core.wakeword


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
