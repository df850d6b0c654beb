"""How much of a spoken question reached the server's user turn, and when the reply began.

The test rooms say a wake word, pause, then ask; the server keeps what it heard on each
connection and a record per turn (`ReferenceServer(keep_audio=True).turn_log`). The
question is found in what was heard by cross-correlation (the echo canceller may have
touched the samples, so not by exact match), and the turns are laid over it: a turn that
ended before the question began answered something else (the wake word's tail, say), and
the share of the question inside the answered turn is what the model heard of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pivox.core.formats import MIC_RATE
from pivox.reference.session import TurnRecord

ROOM_RMS = 33.0  # a quiet room: white noise about -60 dBFS, as scripts/make-fixtures makes


def compose(parts: Sequence[bytes | float], seed: int = 0
            ) -> tuple[bytes, list[tuple[float, float]]]:
    """s16le speech clips and pauses (seconds of room noise) end to end, noise under all
    of it; returns the audio and each part's (start_s, end_s)."""
    rng = np.random.default_rng(seed)
    pcm = [np.zeros(round(p * MIC_RATE)) if isinstance(p, float)
           else np.frombuffer(p, "<i2").astype(np.float64) for p in parts]
    spans, at = [], 0
    for p in pcm:
        spans.append((at / MIC_RATE, (at + len(p)) / MIC_RATE))
        at += len(p)
    x = np.concatenate(pcm) + rng.normal(0, ROOM_RMS, at)
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes(), spans


def locate(clip: bytes, heard: bytes) -> int | None:
    """Where `clip` starts in `heard` (16 kHz samples; may be negative when its beginning
    never arrived), or None if it is not there."""
    a = np.frombuffer(clip, "<i2").astype(np.float64)
    b = np.frombuffer(heard, "<i2").astype(np.float64)
    if len(a) == 0 or len(b) < MIC_RATE // 10:
        return None
    # FFT correlation of the whole clip against everything heard, allowing it to hang off
    # the start (a lost beginning) by padding `heard` in front with zeros.
    pad = len(a)
    b = np.concatenate([np.zeros(pad), b])
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)[: len(b)]
    best = int(np.argmax(corr))
    overlap = b[best : best + len(a)]
    k = min(len(overlap), len(a))
    if k < len(a) // 4:
        return None
    r = np.corrcoef(overlap[:k], a[:k])[0, 1]
    return best - pad if r > 0.5 else None


@dataclass(frozen=True)
class Coverage:
    """The question as the server took it, in seconds of audio."""

    question_s: float
    heard_s: float  # of the question, inside the turn that answered it
    early_turns: int  # turns that ended before the question ended (split it or preceded it)
    reply_after_s: float | None  # reply start minus the question's end (audio time)

    @property
    def fraction(self) -> float:
        return self.heard_s / self.question_s if self.question_s else 0.0


def coverage(question: bytes, heard: bytes, turns: Sequence[TurnRecord],
             connection: int) -> Coverage:
    """Lay the server's turns on `connection` over the question found in `heard`."""
    q_len = len(question) // 2
    start = locate(question, heard)
    q_s = q_len / MIC_RATE
    if start is None:
        return Coverage(q_s, 0.0, len(turns), None)
    q0, q1 = start, start + q_len
    mine = [t for t in turns if t.connection == connection]
    early = [t for t in mine if t.ended_at < q1]
    answered = next((t for t in mine if t.ended_at >= q1), None)
    if answered is None:
        return Coverage(q_s, 0.0, len(early), None)
    begin = max(early[-1].ended_at if early else 0, 0, q0)
    heard_s = max(0, min(q1, answered.ended_at) - begin) / MIC_RATE
    reply = None if answered.reply_at is None else (answered.reply_at - q1) / MIC_RATE
    return Coverage(q_s, heard_s, len(early), reply)
