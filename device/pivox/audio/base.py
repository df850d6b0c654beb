"""What the capture and playback threads need from a device, whatever the device is.

Implementations: ALSA (`alsa.py`), WAV files (`wavfile.py`). The threads own the
device objects; nothing else touches them. The formats they carry (16 kHz s16le mono from
a source, frame sizes) are defined in pivox.core.formats.
"""

from __future__ import annotations

from typing import Protocol


class DeviceError(OSError):
    """The device is missing, busy or vanished. The message names the device."""


class AudioSource(Protocol):
    """A microphone. `read` blocks until one frame is ready, at real time for real devices."""

    name: str

    def read(self) -> bytes:
        """One frame: 16 kHz s16le mono, exactly frame_bytes(frame_ms). Raises DeviceError."""
        ...

    @property
    def overruns(self) -> int:
        """Audio the device lost because it was not read in time, as it reported it."""
        ...

    @property
    def backlog_s(self) -> float:
        """Audio already read from the device but not yet returned by `read`: a device
        period holds several frames, so the frame just returned ended this long ago."""
        ...

    def close(self) -> None: ...


class AudioSink(Protocol):
    """A speaker. `write` blocks while the device buffer is full (that is the pacing)."""

    name: str
    rate: int  # the device's own rate; the player resamples to it
    period_frames: int  # samples per write that keep the device fed without stalling

    def write(self, pcm: bytes) -> None:
        """Play s16le mono at `rate`. Raises DeviceError."""
        ...

    def drop(self) -> None:
        """Discard whatever the device still holds, at once (barge-in)."""
        ...

    def delay_s(self) -> float:
        """Audio written but not yet heard, in seconds (for echo alignment and metrics)."""
        ...

    def close(self) -> None: ...
