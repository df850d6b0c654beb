"""The speaker must not answer to its own voice: a keyword the microphone hears just after
the speaker said it is recognised as echo, whether or not the canceller has learnt the
room yet.

A twin of the wake engine decides, and only when asked. The playback thread keeps the
last KEEP_S of what it played (16 kHz, stamped with when it is heard) in a ring, which costs
an append per period. When the microphone's engine fires, `explains` runs the twin afresh
over that ring on the asking thread. A keyword in the microphone is rare and replies are
long, so the twin costs nothing while the speaker talks: no thread, no wake-ups, no engine
pass over audio nobody asks about. If the speaker has been silent, the ring answers at once.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import numpy as np

from pivox.core.formats import MIC_RATE
from pivox.core.wakeword import WakeEngine

log = logging.getLogger("pivox.ownvoice")
BEFORE_S = 0.5  # the microphone's engine may decide a little before the twin does
AFTER_S = 1.5  # echo delay, device buffers and the two engines' timing differences
LEAD_S = 2.0  # played audio the twin hears before a keyword that ended AFTER_S ago
KEEP_S = LEAD_S + AFTER_S + BEFORE_S + 0.5  # the ring: the last this much of the speaker


class OwnVoice:
    """Fed by the playback thread, asked by the capture thread."""

    def __init__(self, engine: WakeEngine) -> None:
        self._engine = engine
        engine.stop_armed = True  # a stop word in a reply must not stop it either
        self.said_at = -1e9  # monotonic time the speaker last finished saying a keyword
        self.said = 0  # keywords the microphone heard that the speaker had said
        self.failed = False
        self._lock = threading.Lock()  # the ring
        self._ring: deque[tuple[np.ndarray, float]] = deque()
        self._ring_s = 0.0

    def listen(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """Keep what the speaker plays from `heard_at` (16 kHz s16); only an append."""
        with self._lock:
            self._ring.append((pcm16k, heard_at))
            self._ring_s += len(pcm16k) / MIC_RATE
            while self._ring_s > KEEP_S:
                old, _ = self._ring.popleft()
                self._ring_s -= len(old) / MIC_RATE

    def explains(self, now: float) -> bool:
        """Whether a keyword the microphone heard at `now` is the speaker's own: the twin
        hears the speaker's last few seconds afresh. An engine that fails is reported once
        and then left alone: the twin is a nicety, and without it only the echo of a
        keyword may wake the speaker."""
        with self._lock:
            played = [(pcm, at) for pcm, at in self._ring if at + len(pcm) / MIC_RATE
                      > now - AFTER_S - LEAD_S]
        if self.failed or not any(pcm.any() for pcm, _ in played):
            return False
        try:
            said = self._hear(played)
        except Exception:
            log.exception("own-voice engine failed; its keyword may wake the speaker")
            self.failed = True
            return False
        if said is None or not -BEFORE_S < now - said < AFTER_S:
            return False
        self.said_at = said
        self.said += 1
        return True

    def _hear(self, played: list[tuple[np.ndarray, float]]) -> float | None:
        """When the last keyword in `played` ended, as the twin hears it from the start."""
        self._engine.reset()
        said = None
        for pcm, at in played:
            if self._engine.process(pcm.tobytes()):
                said = at + len(pcm) / MIC_RATE
        return said
