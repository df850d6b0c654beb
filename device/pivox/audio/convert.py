"""Model audio to the speaker's format (24 kHz s16 to the device rate, with the volume),
and the segments it is queued in.

Owned by the playback thread, so the event loop never resamples. A reply is one stream
(the filter's state runs across its chunks, so they join without seams); a prompt is
converted whole; `reset` forgets a flushed reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import soxr

from pivox.core.formats import MODEL_RATE


@dataclass
class Segment:
    """A reply or prompt queued for the speaker."""

    label: str  # "reply" or "prompt:NAME"
    pcm: bytearray  # converted: device rate, volume applied
    raw: list[bytes] = field(default_factory=list)  # 24 kHz, not yet converted
    started: bool = False


class ToDevice:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._stream: soxr.ResampleStream | None = None

    def reset(self) -> None:
        self._stream = None

    def convert(self, pcm24k: bytes, volume: float, stream: bool) -> bytes:
        x = np.frombuffer(pcm24k, dtype="<i2").astype(np.float32)
        if self.rate != MODEL_RATE:
            if not stream:
                x = soxr.resample(x, MODEL_RATE, self.rate)
            else:
                if self._stream is None:
                    self._stream = soxr.ResampleStream(MODEL_RATE, self.rate, 1,
                                                       dtype="float32")
                x = self._stream.resample_chunk(x)
        x *= volume
        return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
