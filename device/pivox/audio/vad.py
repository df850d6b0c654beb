"""End-of-speech detection on 16 kHz audio, in audio time (works faster than real time too).

Wraps pymicro-vad's detector (10 ms steps) with the hysteresis a conversation needs:
speech starts after `start_ms` of voice, and ends after `end_ms` of quiet. A step quieter
than `min_dbfs` (the capture thread sets it just above the room's noise floor) is quiet
whatever the model says: pymicro-vad's window keeps its probability up for a while after
the voice stops, and the room's own level says sooner that it has. Such a step is not
given to the model at all: its 10 ms steps are the costliest part of the capture thread,
and a quiet room, or the silence sent in place of a reply's echo, is most of a
conversation.
"""

from __future__ import annotations

import numpy as np
from pymicro_vad import MicroVad

from pivox.core.formats import frame_bytes

STEP_BYTES = frame_bytes(10)  # 10 ms of microphone audio
PRIME_STEPS = 80  # 10 ms steps of input pymicro-vad needs before it answers
SILENT_STEP = bytes(STEP_BYTES)


class SpeechDetector:
    def __init__(self, threshold: float = 0.5, start_ms: int = 60, end_ms: int = 350) -> None:
        self._vad = MicroVad()
        self._spare: MicroVad | None = None  # warmed on silence for the next stream
        self._spare_steps = 0
        self.threshold = threshold
        self._start_steps = max(1, start_ms // 10)
        self._end_steps = max(1, end_ms // 10)
        self._buf = b""
        self._voiced = 0
        self._quiet = 0
        self.in_speech = False
        self.last_probability = 0.0
        self.min_dbfs = -200.0  # no level gate until the room is known
        self.unasked = 0  # steps quiet enough to be quiet without the model's word

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; returns "start" or "end" when speech begins or ends in it."""
        self._buf += pcm
        result: str | None = None
        while len(self._buf) >= STEP_BYTES:
            step, self._buf = self._buf[:STEP_BYTES], self._buf[STEP_BYTES:]
            if _dbfs(step) < self.min_dbfs:
                prob = 0.0  # quiet whatever the model says: it is not asked (it is costly)
                self.unasked += 1
            else:
                prob = self._vad.process_10ms(step)
                if prob < 0:  # the detector is still filling its window
                    continue
            self.last_probability = prob
            if prob >= self.threshold:
                self._voiced += 1
                self._quiet = 0
            else:
                self._quiet += 1
                self._voiced = 0
            if not self.in_speech and self._voiced >= self._start_steps:
                self.in_speech = True
                result = "start"
            elif self.in_speech and self._quiet >= self._end_steps:
                self.in_speech = False
                result = "end"
        return result

    def prime(self) -> None:
        """Start afresh on a detector warmed up on silence: pymicro-vad decides nothing for
        its first 0.8 s, and warming it on the audio before a conversation (the wake word)
        would leave it hearing that voice for a moment after the stream starts. The warm
        spare is swapped in; whatever `warm` has not yet done is done here."""
        self.warm(PRIME_STEPS)
        assert self._spare is not None
        self._vad, self._spare = self._spare, self._vad
        self._spare.reset()
        self._spare_steps = 0
        self._buf = b""
        self.settle()

    @property
    def warmed(self) -> bool:
        """The next stream's detector is ready: `prime` will cost no model steps."""
        return self._spare_steps >= PRIME_STEPS

    def warm(self, steps: int) -> None:
        """Warm the spare detector by up to `steps` silent steps. The capture thread does a
        few per frame between conversations, so a stream starts with a detector that is
        ready at once and no 0.8 s of model steps in one burst at the wake word (the
        costliest moment to take the board's time)."""
        if self._spare is None:
            self._spare = MicroVad()
        todo = min(steps, PRIME_STEPS - self._spare_steps)
        for _ in range(todo):
            self._spare.process_10ms(SILENT_STEP)
        self._spare_steps += todo

    def settle(self) -> None:
        """Keep the detector's warmed-up window but forget any speech edge seen so far
        (used after priming it with audio from before the conversation)."""
        self._voiced = self._quiet = 0
        self.in_speech = False

    def reset(self) -> None:
        self._vad.reset()
        self._buf = b""
        self._voiced = self._quiet = 0
        self.in_speech = False


def _dbfs(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    ms = float(np.dot(x, x)) / max(1, len(x))
    return 10 * float(np.log10(ms / 32768.0**2)) if ms > 0 else -200.0
