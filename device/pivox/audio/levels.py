"""The acoustic context of the room: noise floor, speech level and clipping, per frame.

Cheap enough for every frame of the idle path. The noise floor follows quiet quickly and
loud slowly (a room's floor is its quietest steady level); the speech level is tracked only
while the speech detector hears speech. A noisy room makes the speech detector stricter.
"""

from __future__ import annotations

import math

import numpy as np

FLOOR_DB = -96.0


class AcousticContext:
    def __init__(self) -> None:
        self.noise_floor_dbfs = -70.0
        self.speech_dbfs = FLOOR_DB
        self.level_dbfs = FLOOR_DB
        self.clipped = 0  # samples at full scale since start
        self._frames = 0

    def update(self, pcm: bytes, speaking: bool, xf: np.ndarray | None = None) -> None:
        """`xf`: the same frame as float32, when the caller has it already."""
        if xf is None:
            xf = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
        x = xf
        # Not np.abs(x).max(): in int16, abs(-32768) wraps to -32768 and hides the clip.
        if len(x) and (x.max() >= 32767 or x.min() <= -32768):
            self.clipped += int(np.count_nonzero((x >= 32767) | (x <= -32768)))
        rms = math.sqrt(float(np.dot(xf, xf)) / max(1, len(x))) / 32768.0
        db = 20 * math.log10(rms) if rms > 1e-5 else FLOOR_DB
        self.level_dbfs = db
        self._frames += 1
        # Settle in the first two seconds, but not towards speech: a voice in them (a wake
        # word said at once) must not lift the floor it is measured against.
        rising = 0.05 if self._frames < 100 and db < self.noise_floor_dbfs + 12 else 0.002
        rate = 0.3 if db < self.noise_floor_dbfs else rising  # then fall fast, rise slowly
        self.noise_floor_dbfs += rate * (db - self.noise_floor_dbfs)
        if speaking:
            self.speech_dbfs += 0.05 * (db - self.speech_dbfs) if self.speech_dbfs > FLOOR_DB \
                else db - self.speech_dbfs

    def speech_threshold(self, base: float = 0.5) -> float:
        """The speech detector's probability threshold for this room: stricter as the noise
        floor rises above a quiet home's (-60 dBFS), up to 0.8 in a loud kitchen."""
        return min(0.8, base + max(0.0, self.noise_floor_dbfs + 60.0) * 0.01)

    def snapshot(self) -> dict[str, float | int]:
        return {"noise_floor_dbfs": round(self.noise_floor_dbfs, 1),
                "speech_dbfs": round(self.speech_dbfs, 1),
                "level_dbfs": round(self.level_dbfs, 1), "clipped_samples": self.clipped}
