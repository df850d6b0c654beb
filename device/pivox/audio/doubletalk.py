"""Is the user talking over the reply, or is it the speaker's own echo?

The canceller leaves a residual of the reply 20-30 dB down on average, much less at word
onsets and in a room it is still learning. A speech detector cannot tell that residual from
a person (speech is speech at any level), and neither can the model's activity detection,
so while the speaker's sound is in the room the model is sent silence unless the
microphone holds more than the echo can explain: this decides (a residual echo
suppressor's double-talk detector, after Geigel).

The echo at the microphone never exceeds the reference's recent peak by more than the
room's coupling, a property of the device and the room that this learns from frames that
held only echo (the loudest of the last few seconds of them), which are those the canceller
could take most of away: the user's voice it cannot cancel. A frame `margin_db` over
that, and well above the room's noise, for `start_frames` in a row, is the user; the way
stays open `hang_frames` after the user stops. Until it has learnt the room it takes the
coupling to be 0 dB, so only a voice louder than the speaker itself gets through. It does
not depend on the canceller having converged.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

SILENT_DB = 20.0  # a reference frame quieter than this (about -70 dBFS) is no playback
LEARN_DB = 10.0  # a frame the canceller reduced by this much held echo and nothing else


def energy(pcm: bytes) -> float:
    """Mean square of s16 samples."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.dot(x, x)) / max(1, len(x))


def _db(e: float) -> float:
    return 10 * math.log10(e + 1.0)


class DoubleTalk:
    def __init__(self, margin_db: float = 3.0, over_noise_db: float = 12.0,
                 start_frames: int = 2, hang_frames: int = 20, tail_frames: int = 15,
                 learn_frames: int = 250) -> None:
        self.margin_db = margin_db
        self.over_noise_db = over_noise_db
        self._start = start_frames
        self._hang = hang_frames
        self._ref: deque[float] = deque(maxlen=tail_frames)  # reverberation and lead
        self._coupling: deque[float] = deque(maxlen=learn_frames)
        self._min_learnt = learn_frames // 5
        self.coupling_db = 0.0  # echo at the microphone over the reference's peak
        self.noise_db = 30.0  # the microphone's floor (30 is about -60 dBFS)
        self._above = 0
        self._left = 0
        self.talking = False
        self.opened = 0  # times the user was heard over the reply

    def update(self, ref_e: float, mic_e: float, out_e: float) -> bool:
        """Energies (mean square) of one frame of the reference (aligned to the microphone),
        the microphone and the canceller's output. Returns whether the frame may go to the
        model."""
        self._ref.append(_db(ref_e))
        peak = max(self._ref)
        mic_db = _db(mic_e)
        rate = 0.3 if mic_db < self.noise_db else 0.005  # fall fast, rise slowly
        self.noise_db += rate * (mic_db - self.noise_db)
        if peak < SILENT_DB:  # nothing of the speaker's left in the room
            self._above = 0
            self.talking = False
            return True
        loud = mic_db > self.noise_db + self.over_noise_db
        over = mic_db - peak
        user = loud and over > self.coupling_db + self.margin_db
        self._above = self._above + 1 if user else 0
        if self._above >= self._start:
            if not self.talking:
                self.opened += 1
            self.talking = True
            self._left = self._hang
        elif self.talking:
            self._left -= 1
            self.talking = self._left > 0
        elif loud and not user and _db(out_e) < mic_db - LEARN_DB:
            # the canceller took most of it away, so it was echo alone: what the room gives
            self._coupling.append(over)
            if len(self._coupling) >= self._min_learnt:
                self.coupling_db = max(self._coupling)
        return self.talking
