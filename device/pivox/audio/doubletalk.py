"""Is the user talking over the reply, or is it the speaker's own echo?

The canceller leaves a residual of the reply 20-30 dB down on average, much less at word
onsets and in a room it is still learning. A speech detector cannot tell that residual from
a person (speech is speech at any level), and neither can the model's activity detection,
so while the speaker's sound is in the room the model is sent silence unless the
microphone holds more than the echo can explain: this decides (a residual echo
suppressor's double-talk detector, after Geigel).

The echo at the microphone never exceeds the reference's envelope (its peak over the
lead, then decaying as a room's reverberation does) by more than the room's coupling, a
property of the device and the room. It is learnt from frames that held only echo: those
the canceller could take most of away (it cannot cancel the user's voice), and those where
the speaker played loud and the microphone stayed near the noise for as long after as an
echo can come late (a room that hardly echoes); the loudest of the last few seconds of
them. The canceller's work is proof of echo whatever the verdict, so a room taken for quiet
that echoes after all is learnt afresh: taken for quiet for good, it would pass its own
echo to the model as the user. A frame `margin_db` over the coupling, and well above the
room's noise, for `start_frames` in a row, is the user; the way stays open `hang_frames`
after the user stops. Until it has learnt the room (a second of echo, or a fifth of that
of a room that gives none back) nothing gets through: a speaker an inch from its
microphones can be louder there than anyone in the room. Meanwhile the wake
word, which the wake engine hears unhindered, still interrupts.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from pivox.audio.echo import MAX_LAG_MS

SILENT_DB = 20.0  # a reference frame quieter than this (about -70 dBFS) is no playback
UNLEARNT_DB = 60.0  # a room not yet learnt: nothing counts as the user
QUIET_PROOF = 10  # frames of loud playback and a quiet microphone that prove a quiet room
LEAD_S = 0.08  # the reference is kept 20-60 ms ahead of its echo (see DelayEstimator)
LEARN_DB = 10.0  # a frame the canceller reduced by this much held echo and nothing else
LATE_S = MAX_LAG_MS / 1000  # the latest an echo comes after its reference


def energy(pcm: bytes) -> float:
    """Mean square of s16 samples."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    return float(np.dot(x, x)) / max(1, len(x))


def _db(e: float) -> float:
    return 10 * math.log10(e + 1.0)


class DoubleTalk:
    def __init__(self, margin_db: float = 3.0, over_noise_db: float = 12.0,
                 start_frames: int = 2, hang_frames: int = 10, frame_s: float = 0.02,
                 rt60_s: float = 0.4, learn_frames: int = 250) -> None:
        self.margin_db = margin_db
        self.over_noise_db = over_noise_db
        self._start = start_frames
        self._hang = hang_frames
        # The reference leads its echo by up to LEAD_S; after it, the room's reverberation
        # dies away at 60 dB per rt60_s: the echo is never louder than that envelope.
        self._ref: deque[float] = deque(maxlen=max(1, round(LEAD_S / frame_s)))
        # A quiet room is proved by a microphone that stays quiet for LATE_S after the
        # speaker played loud: per frame, the reference's quietest over its lead, and the
        # microphone.
        late = round(LATE_S / frame_s) + 1
        self._played: deque[float] = deque(maxlen=late)
        self._heard: deque[float] = deque(maxlen=late)
        self._decay_db = 60.0 * frame_s / rt60_s
        self._envelope_db = 0.0
        self._coupling: deque[float] = deque(maxlen=learn_frames)
        self._min_learnt = learn_frames // 5
        self._echoed = False  # some learnt frame held echo the canceller took away
        self.coupling_db = UNLEARNT_DB  # echo at the microphone over the reference's envelope
        self.noise_db = 30.0  # the microphone's floor (30 is about -60 dBFS)
        self._above = 0
        self._left = 0
        self.talking = False
        self.opened = 0  # times the user was heard over the reply

    def update(self, ref_e: float, mic_e: float, out_e: float) -> bool:
        """Energies (mean square) of one frame of the reference (aligned to the microphone),
        the microphone and the canceller's linear output (before residual suppression).
        Returns whether the frame may go to the model."""
        self._ref.append(_db(ref_e))
        self._envelope_db = peak = max(max(self._ref), self._envelope_db - self._decay_db)
        mic_db = _db(mic_e)
        rate = 0.3 if mic_db < self.noise_db else 0.005  # fall fast, rise slowly
        self.noise_db += rate * (mic_db - self.noise_db)
        self._played.append(min(self._ref))
        self._heard.append(mic_db)
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
        if loud and _db(out_e) < mic_db - LEARN_DB:
            # Echo, whatever the verdict: the canceller took most of it away, and it cannot
            # take a voice away.
            self._learn(over, quiet=False)
        elif self._proves_quiet():
            self._learn(max(self._heard) - self._played[0], quiet=True)
        return self.talking

    def rest(self) -> None:
        """The speaker's sound has left the room and frames stop coming here: whoever had
        the floor over it, the next reply is judged from its first frame (and its own
        reference, not what is left of the last one's)."""
        if not self._ref:  # at rest already: every frame between replies comes here
            return
        self._above = self._left = 0
        self.talking = False
        self._ref.clear()
        self._played.clear()
        self._heard.clear()
        self._envelope_db = 0.0

    @property
    def quiet_room(self) -> bool:
        """Learnt, and the room gives no echo back (headphones, a distant microphone)."""
        return not self._echoed and self.coupling_db < UNLEARNT_DB

    def _proves_quiet(self) -> bool:
        """The speaker played loud LATE_S ago, for longer than its echo takes to arrive,
        and the microphone has stayed near the room's noise since: a room that hardly
        echoes."""
        return (len(self._played) == self._played.maxlen
                and self._played[0] > self.noise_db + 2 * self.over_noise_db
                and max(self._heard) < self.noise_db + self.over_noise_db)

    def _learn(self, over_db: float, quiet: bool) -> None:
        if not quiet and not self._echoed:  # the quiet frames were no proof of this room
            self._coupling.clear()
            self.coupling_db = UNLEARNT_DB
        self._coupling.append(over_db)
        self._echoed = self._echoed or not quiet
        # A room that echoes is learnt over a second of it, the loudest of which rules; one
        # that has never echoed needs less proof (its bound is the noise, 24 dB down).
        if len(self._coupling) >= (self._min_learnt if self._echoed else QUIET_PROOF):
            self.coupling_db = max(self._coupling)
