"""A room on one clock: what the speaker plays comes back into the microphone through a
room impulse response, a fixed acoustic delay later, with the user's voice and room noise.

Speaker and microphone share one crystal here, as they do on an I2S HAT (one codec for
both) or with the speaker's own USB sound card, so the echo path is steady and sample
exact. The daemon sees an ordinary AudioSink and AudioSource, paced at real time; the sink
keeps a device buffer and reports its delay as ALSA does, and a drop discards what was
still buffered. Used by the full-duplex tests (tests/integration/test_full_duplex.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np
import soxr

from pivox.core.formats import MIC_RATE as RATE
from pivox.core.formats import frame_bytes
from pivox.reference.room import room_ir

SPK_RATE = 48000
PERIOD_S = 0.02


class Room:
    def __init__(self, delay_s: float = 0.03, gain: float = 1.0, noise: float = 10.0,
                 seed: int = 1, frame_ms: int = 20, buffer_periods: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.ir = room_ir(delay_s, rng) * gain
        self._ir_fft: np.ndarray | None = None
        self._rng = rng
        self._noise = noise
        self._frame_ms = frame_ms
        self._buffer_periods = buffer_periods
        self._lock = threading.Lock()
        self._epoch = time.monotonic()  # sample 0 of the room's timeline
        self._played = np.zeros(RATE * 600, dtype=np.float32)  # the speaker, at 16 kHz
        self._played_to = 0  # samples of the timeline the speaker has been given
        self._voice: deque[np.ndarray] = deque()  # what the user says, queued
        self.speaker_opened = 0

    def at(self, t: float) -> int:
        return round((t - self._epoch) * RATE)

    def say(self, pcm16k: bytes) -> float:
        """Queue the user's speech; returns how long it takes to say, in seconds."""
        x = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32)
        with self._lock:
            self._voice.append(x)
            return sum(len(v) for v in self._voice) / RATE

    def open_sink(self) -> RoomSpeaker:
        self.speaker_opened += 1
        return RoomSpeaker(self, self._buffer_periods)

    def open_source(self) -> RoomMic:
        return RoomMic(self, self._frame_ms)

    def _play(self, start: int, x: np.ndarray) -> None:
        with self._lock:
            end = min(start + len(x), len(self._played))
            self._played[start:end] = x[: end - start]
            self._played_to = max(self._played_to, end)

    def _forget(self, after: int) -> None:
        """A dropped device buffer never reaches the room."""
        with self._lock:
            self._played[after : self._played_to] = 0
            self._played_to = min(self._played_to, after)

    def _voice_take(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            pos = 0
            while pos < n and self._voice:
                v = self._voice[0]
                k = min(n - pos, len(v))
                out[pos : pos + k] = v[:k]
                pos += k
                if k == len(v):
                    self._voice.popleft()
                else:
                    self._voice[0] = v[k:]
        return out

    def mic(self, start: int, n: int) -> np.ndarray:
        """The microphone's samples [start, start + n): echo, the user's voice, noise."""
        m = len(self.ir)
        lo = start - m + 1
        seg = np.zeros(n + m - 1)
        a = max(lo, 0)
        with self._lock:
            seg[a - lo :] = self._played[a : start + n]
        size = 1 << (n + m - 1).bit_length()
        if self._ir_fft is None or len(self._ir_fft) != size // 2 + 1:
            self._ir_fft = np.fft.rfft(self.ir, size)
        echo = np.fft.irfft(np.fft.rfft(seg, size) * self._ir_fft, size)[m - 1 : m - 1 + n]
        return echo + self._voice_take(n) + self._rng.normal(0, self._noise, n)


class RoomSpeaker:
    """An AudioSink: 48 kHz s16le, real-time paced, `buffer_periods` of device buffer."""

    def __init__(self, room: Room, buffer_periods: int) -> None:
        self.name = "room:speaker"
        self.rate = SPK_RATE
        self.period_frames = int(SPK_RATE * PERIOD_S)
        self._room = room
        self._buffer_s = buffer_periods * PERIOD_S
        self._resampler = soxr.ResampleStream(SPK_RATE, RATE, 1, dtype="float32")
        self._next: int | None = None  # the timeline sample the next write starts at
        self._out = 0  # where the resampler's next output sample lands on the timeline

    def write(self, pcm: bytes) -> None:
        now = self._room.at(time.monotonic())
        if self._next is None or self._next < now:  # first write, or an underrun
            self._next = self._out = now
            self._resampler = soxr.ResampleStream(SPK_RATE, RATE, 1, dtype="float32")
        # The room hears the 48 kHz output at 16 kHz: the resampler's output, sample for
        # sample, on the timeline (its chunks vary in length; the stream does not).
        x = self._resampler.resample_chunk(np.frombuffer(pcm, dtype="<i2").astype(np.float32))
        self._room._play(self._out, x)
        self._out += len(x)
        self._next += len(pcm) // 2 * RATE // SPK_RATE
        ahead = (self._next - self._room.at(time.monotonic())) / RATE - self._buffer_s
        if ahead > 0:  # the device buffer is full: block, as ALSA does
            time.sleep(ahead)

    def drop(self) -> None:
        self._room._forget(self._room.at(time.monotonic()))
        self._next = None

    def delay_s(self) -> float:
        if self._next is None:
            return 0.0
        return max(0.0, (self._next - self._room.at(time.monotonic())) / RATE)

    def close(self) -> None:
        self._next = None


class RoomMic:
    """An AudioSource: one frame when its last sample has been heard, as a device gives."""

    def __init__(self, room: Room, frame_ms: int) -> None:
        self.name = "room:microphone"
        self.overruns = 0
        self.backlog_s = 0.0  # one frame at a time
        self._room = room
        self._n = frame_bytes(frame_ms) // 2
        self._pos = room.at(time.monotonic())

    def read(self) -> bytes:
        end = self._pos + self._n
        delay = (end - self._room.at(time.monotonic())) / RATE
        if delay > 0:
            time.sleep(delay)
        x = self._room.mic(self._pos, self._n)
        self._pos = end
        return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()

    def close(self) -> None:
        pass
