"""WAV files as a microphone and a speaker: recorded audio for the demo and tests.

`WavSource` paces itself like a sound card when `realtime` is on (an absolute schedule, so
no drift), and keeps delivering quiet after the recording ends, as a microphone in a
quiet room would. `WavSink` records exactly what was played, paced at real time with a
device-like buffer, so timings measured against it mean what they would on hardware.
"""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from pivox.audio.base import RATE, DeviceError, frame_bytes


def read_wav(path: str | Path, rate: int = RATE) -> bytes:
    """Whole file as s16le mono at `rate` (channels mixed, resampled with soxr)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise DeviceError(f"{path}: only 16-bit WAV files are supported")
            channels, src_rate = w.getnchannels(), w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (OSError, wave.Error, EOFError) as exc:
        raise DeviceError(f"{path}: {exc}") from None
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype("<i2")
    if src_rate != rate:
        data = soxr.resample(data, src_rate, rate, quality="HQ").astype("<i2")
    return data.tobytes()


class WavSource:
    def __init__(self, path: str | Path, frame_ms: int = 20, realtime: bool = True) -> None:
        self.name = f"wav:{path}"
        self._pcm = read_wav(path)
        self._frame = frame_bytes(frame_ms)
        self._frame_s = frame_ms / 1000
        self._realtime = realtime
        self._pos = 0
        self.frames_read = 0
        self.started_at: float | None = None  # monotonic time of the first sample
        self.duration_s = len(self._pcm) / (RATE * 2)

    def read(self) -> bytes:
        if self.started_at is None:
            self.started_at = time.monotonic()
        self.frames_read += 1
        if self._realtime:  # the frame is complete when its last sample has been "heard"
            due = self.started_at + self.frames_read * self._frame_s
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        chunk = self._pcm[self._pos : self._pos + self._frame]
        self._pos += len(chunk)
        return chunk + bytes(self._frame - len(chunk))

    def wall_time(self, audio_s: float) -> float:
        """Monotonic time at which the sample at `audio_s` into the recording was captured."""
        assert self.started_at is not None
        return self.started_at + audio_s

    def close(self) -> None:
        pass


class WavSink:
    def __init__(self, path: str | Path, rate: int = 48000, period_ms: int = 20,
                 buffer_periods: int = 3, realtime: bool = True) -> None:
        self.name = f"wav:{path}"
        self.rate = rate
        self.period_frames = rate * period_ms // 1000
        self._buffer_s = buffer_periods * period_ms / 1000
        self._realtime = realtime
        self._lock = threading.Lock()
        try:
            self._wav = wave.open(str(path), "wb")  # noqa: SIM115 - open for the sink's life
        except OSError as exc:
            raise DeviceError(f"{path}: {exc.strerror}") from None
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._started: float | None = None
        self._written_s = 0.0

    def write(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        with self._lock:
            self._wav.writeframes(pcm)
        self._written_s += len(pcm) / (2 * self.rate)
        if self._realtime:  # block while the "device buffer" is full, as ALSA would
            ahead = self._started + self._written_s - self._buffer_s - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def drop(self) -> None:
        """What is in the file has been played; a real device would discard its buffer."""

    def delay_s(self) -> float:
        if self._started is None:
            return 0.0
        return max(0.0, self._started + self._written_s - time.monotonic())

    def close(self) -> None:
        with self._lock:
            self._wav.close()
