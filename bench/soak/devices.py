"""The soak's stand-in devices: a looping microphone that can be unplugged, a null speaker.

Both run at real time, as the hardware does, and hold no more than one repetition of the
recording: the soak measures the daemon's memory, not its rig's.
"""

from __future__ import annotations

import time
import wave
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pivox.audio.base import AudioSource, DeviceError
from pivox.audio.wavfile import read_wav
from pivox.core.formats import MIC_RATE, SAMPLE_BYTES, frame_bytes

DEMO_MIC = Path(str(resources.files("pivox") / "data" / "demo_mic.wav"))


def write_cycle(path: Path, gap_s: float) -> bytes:
    """The demo recording, then `gap_s` of quiet: one repetition, also written to `path`
    (the configured capture device, for the record)."""
    cycle = read_wav(DEMO_MIC) + bytes(round(gap_s * MIC_RATE) * SAMPLE_BYTES)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_BYTES)
        w.setframerate(MIC_RATE)
        w.writeframes(cycle)
    return cycle


class LoopingMic:
    """The recording over and over at real time, a frame when its last sample is due: a
    microphone whose memory does not grow with the soak's length (a whole soak's recording
    read into memory would be 115 MB an hour, and the soak measures the daemon's)."""

    def __init__(self, cycle: bytes, frame_ms: int) -> None:
        self.name = "soak-mic"
        self.overruns = 0
        self.backlog_s = 0.0
        self._cycle = cycle
        self._frame = frame_bytes(frame_ms)
        self._frame_s = frame_ms / 1000
        self._pos = 0
        self._started: float | None = None
        self._frames = 0

    def read(self) -> bytes:
        if self._started is None:
            self._started = time.monotonic()
        self._frames += 1
        delay = self._started + self._frames * self._frame_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        out = bytearray()
        while len(out) < self._frame:
            take = self._cycle[self._pos : self._pos + self._frame - len(out)]
            out += take
            self._pos = (self._pos + len(take)) % len(self._cycle)
        return bytes(out)

    def close(self) -> None:
        pass


class Microphone:
    """A source factory for the daemon that can be unplugged: while `removed`, opening it
    and reading from it raise DeviceError. A new plug starts the recording over."""

    def __init__(self, open_source: Callable[[], AudioSource]) -> None:
        self._open = open_source
        self.removed = False
        self.opens = 0

    def __call__(self) -> AudioSource:
        if self.removed:
            raise DeviceError("soak microphone: no such device (unplugged)")
        self.opens += 1
        return _Plugged(self, self._open())


class _Plugged:
    def __init__(self, mic: Microphone, source: AudioSource) -> None:
        self._mic, self._source = mic, source
        self.name = source.name

    @property
    def overruns(self) -> int:
        return self._source.overruns

    @property
    def backlog_s(self) -> float:
        return self._source.backlog_s

    def read(self) -> bytes:
        if self._mic.removed:
            raise DeviceError("soak microphone: device disconnected")
        return self._source.read()

    def close(self) -> None:
        self._source.close()


class NullSink:
    """A speaker that discards audio at real time, with a device-like buffer (as WavSink,
    without a file growing for the whole soak)."""

    def __init__(self, rate: int = 48000, period_ms: int = 20, buffer_periods: int = 3) -> None:
        self.name = "soak-null"
        self.rate = rate
        self.period_frames = rate * period_ms // 1000
        self._buffer_s = buffer_periods * period_ms / 1000
        self._started: float | None = None
        self._written_s = 0.0

    def write(self, pcm: bytes) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        self._written_s += len(pcm) / (2 * self.rate)
        ahead = self._started + self._written_s - self._buffer_s - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)

    def drop(self) -> None:
        pass

    def delay_s(self) -> float:
        if self._started is None:
            return 0.0
        return max(0.0, self._started + self._written_s - time.monotonic())

    def close(self) -> None:
        pass
