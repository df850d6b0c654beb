"""The speaker must not answer to its own voice: a twin of the wake engine listens to
exactly what is being played, so a keyword the microphone hears just after the speaker
said it is recognised as echo, whether or not the canceller has learnt the room yet.
"""

from __future__ import annotations

import numpy as np

from pivox.core.formats import MIC_RATE
from pivox.core.wakeword import WakeEngine

BEFORE_S = 0.5  # the microphone's engine may decide a little before the twin does
AFTER_S = 1.5  # echo delay, device buffers and the two engines' timing differences


class OwnVoice:
    """Fed by the playback thread, asked by the capture thread (a float store is atomic)."""

    def __init__(self, engine: WakeEngine) -> None:
        self._engine = engine
        engine.stop_armed = True  # a stop word in a reply must not stop it either
        self.said_at = -1e9  # monotonic time the speaker finished saying a keyword
        self.said = 0

    def hear(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """What the speaker plays from `heard_at` on, as 16 kHz s16."""
        if self._engine.process(pcm16k.tobytes()):
            self.said_at = heard_at + len(pcm16k) / MIC_RATE
            self.said += 1

    def explains(self, now: float) -> bool:
        """Whether a keyword the microphone heard at `now` is the speaker's own."""
        return -BEFORE_S < now - self.said_at < AFTER_S
