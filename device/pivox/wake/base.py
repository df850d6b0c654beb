"""The wake engine interface every engine plugs into."""

from __future__ import annotations

from typing import Protocol


class WakeEngine(Protocol):
    """Fed 16 kHz s16le mono in frames of any size; says when it heard a keyword.

    Runs in the capture thread: `process` must be cheap and never block.
    """

    name: str  # engine name for status, e.g. "micro"
    keywords: tuple[str, ...]

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; return the keyword detected in it, or None."""
        ...

    def reset(self) -> None:
        """Forget buffered audio and probabilities (after a detection or a mute)."""
        ...
