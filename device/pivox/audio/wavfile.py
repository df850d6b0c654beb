"""WAV files as a microphone and a speaker: recorded audio for the demo and tests.

`WavSource` paces itself like a sound card when `realtime` is on (an absolute schedule, so
no drift), and keeps delivering quiet after the recording ends, as a microphone in a
quiet room would. `WavSink` records exactly what was played, paced at real time with a
device-like buffer, so timings measured against it mean what they would on hardware.
"""

from __future__ import annotations

import struct
import threading
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from pivox.audio.base import DeviceError
from pivox.core.formats import MIC_RATE as RATE
from pivox.core.formats import frame_bytes

_PCM = {1: "u1", 2: "<i2", 4: "<i4"}  # sample width -> dtype (8-bit WAV is unsigned)
_FLOAT = {4: "<f4", 8: "<f8"}


def _riff(path: str | Path) -> tuple[int, int, int, int, bytes]:
    """(format tag, channels, rate, bits, data) of a RIFF WAVE file. Python 3.11's `wave`
    reads only plain PCM; sox and most recorders write WAVE_FORMAT_EXTENSIBLE for more than
    two channels or 16 bits, and float for 32-bit, so the header is read here."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError("not a RIFF WAVE file")
    fmt = data = None
    pos = 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None or len(fmt) < 16:
        raise ValueError("no fmt or data chunk")
    tag, channels, rate = struct.unpack("<HHI", fmt[:8])
    bits = struct.unpack("<H", fmt[14:16])[0]
    if tag == 0xFFFE and len(fmt) >= 26:  # extensible: the real tag opens the sub-format
        tag = struct.unpack("<H", fmt[24:26])[0]
    return tag, channels, rate, bits, data


def read_wav(path: str | Path, rate: int = RATE) -> bytes:
    """Whole file as s16le mono at `rate`: PCM 8/16/24/32-bit or float, any channel count
    (mixed) and rate (resampled with soxr)."""
    try:
        tag, channels, src_rate, bits, raw = _riff(path)
    except (OSError, ValueError, struct.error) as exc:
        raise DeviceError(f"{path}: not a readable WAV file ({exc})") from None
    width = bits // 8
    if channels < 1 or not ((tag == 1 and width in (1, 2, 3, 4)) or
                            (tag == 3 and width in _FLOAT)):
        raise DeviceError(f"{path}: unsupported WAV encoding (format {tag}, {bits} bits); "
                          "convert it: sox IN -b 16 OUT.wav")
    raw = raw[:len(raw) // (width * channels) * width * channels]
    if tag == 3:
        data = np.frombuffer(raw, dtype=_FLOAT[width]).astype(np.float32) * 32768.0
    else:
        if width == 3:  # 24-bit: widen each sample to 32 bits
            raw = np.pad(np.frombuffer(raw, dtype="u1").reshape(-1, 3), ((0, 0), (1, 0))
                         ).tobytes()
            width = 4
        data = np.frombuffer(raw, dtype=_PCM[width]).astype(np.float32)
        if width == 1:
            data = (data - 128.0) * 256.0
        elif width == 4:
            data /= 65536.0
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if src_rate != rate:
        data = soxr.resample(data, src_rate, rate, quality="HQ")
    return np.clip(np.round(data), -32768, 32767).astype("<i2").tobytes()


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
        self.overruns = 0
        self.backlog_s = 0.0  # one frame at a time

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
