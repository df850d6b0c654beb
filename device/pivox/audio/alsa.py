"""ALSA microphone and speaker through pyalsaaudio (real libasound).

Capture converts whatever the array delivers (16/44.1/48 kHz, 1-8 channels, S16_LE,
S32_LE or S24_3LE) to the speaker's internal 16 kHz s16 mono: one channel by index, or all
mixed; soxr resamples. An overrun is counted and capture carries on. A missing, busy or
vanished device raises DeviceError naming it; the capture thread decides when to retry.

libasound prints its own errors ("ALSA lib confmisc.c:855:(parse_card) ...") to stderr;
`alsa_errors()` collects them instead, so the caller can put them with the failure they
explain.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import re
import threading
from collections.abc import Iterator

import alsaaudio
import numpy as np
import soxr

from pivox.audio.base import DeviceError
from pivox.core.formats import MIC_RATE as RATE
from pivox.core.formats import frame_bytes

log = logging.getLogger("pivox.audio.alsa")

FORMATS = {
    "S16_LE": (alsaaudio.PCM_FORMAT_S16_LE, 2),
    "S32_LE": (alsaaudio.PCM_FORMAT_S32_LE, 4),
    "S24_3LE": (alsaaudio.PCM_FORMAT_S24_3LE, 3),
}


def to_float(raw: bytes, fmt: str, channels: int) -> np.ndarray:
    """Interleaved device samples to float32 in [-1, 1), shape (frames, channels)."""
    if fmt == "S16_LE":
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif fmt == "S32_LE":
        x = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:  # S24_3LE: three bytes per sample, little-endian, sign-extended
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v & 0x800000, v - 0x1000000, v)
        x = v.astype(np.float32) / 8388608.0
    n = len(x) // channels
    return x[: n * channels].reshape(n, channels)


def to_mono(raw: bytes, fmt: str, channels: int, channel: int) -> np.ndarray:
    """One channel by index, or all mixed, as float32. Mixing S16/S32 happens in integers
    first, so only a quarter (for four channels) of the samples is converted to float."""
    if fmt == "S24_3LE" or channels == 1:
        x = to_float(raw, fmt, channels)
        return x[:, 0] if channels == 1 else (
            x.mean(axis=1) if channel < 0 else x[:, min(channel, channels - 1)])
    dtype, full = ("<i2", 32768.0) if fmt == "S16_LE" else ("<i4", 2147483648.0)
    ints = np.frombuffer(raw, dtype=dtype)
    ints = ints[: len(ints) // channels * channels].reshape(-1, channels)
    if channel >= 0:
        return ints[:, min(channel, channels - 1)].astype(np.float32) / full
    total: np.ndarray = ints.sum(axis=1, dtype=np.int64)
    return total.astype(np.float32) * (1.0 / (channels * full))


def to_s16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


class AlsaSource:
    def __init__(self, device: str, rate: int, channels: int, fmt: str, channel: int,
                 period_ms: int, frame_ms: int) -> None:
        self.name = device
        self._fmt, self._channels, self._channel, self._rate = fmt, channels, channel, rate
        self._frame = frame_bytes(frame_ms)
        self._period = rate * period_ms // 1000
        self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32") \
            if rate != RATE else None
        self._pending = b""
        # The internal format already (a Pi's usual mono 16 kHz mic): bytes pass through.
        self._as_is = fmt == "S16_LE" and channels == 1 and rate == RATE
        self.overruns = 0
        alsa_fmt, _ = FORMATS[fmt]
        with alsa_errors() as said:  # libasound's own words join the error, not stderr
            try:
                self._pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NORMAL,
                                          device=device, rate=rate, channels=channels,
                                          format=alsa_fmt, periodsize=self._period, periods=4)
            except alsaaudio.ALSAAudioError as exc:
                raise DeviceError(f"microphone {device!r}: {exc}{_cause(said)}") from None

    def read(self) -> bytes:
        while len(self._pending) < self._frame:
            try:
                n, raw = self._pcm.read()
            except alsaaudio.ALSAAudioError as exc:
                raise DeviceError(f"microphone {self.name!r}: {exc}") from None
            if n == -errno.EPIPE or n < 0:
                self.overruns += 1  # pyalsaaudio has already re-prepared the stream
                continue
            if n == 0:
                continue
            if self._as_is:
                self._pending += raw
                continue
            mono = to_mono(raw, self._fmt, self._channels, self._channel)
            if self._resampler is not None:
                mono = self._resampler.resample_chunk(mono)
            self._pending += to_s16(mono)
        out, self._pending = self._pending[: self._frame], self._pending[self._frame :]
        return out

    @property
    def backlog_s(self) -> float:
        return len(self._pending) / 2 / RATE

    def close(self) -> None:
        self._pcm.close()


class AlsaSink:
    def __init__(self, device: str, rate: int, channels: int = 1, period_ms: int = 20,
                 periods: int = 4) -> None:
        self.name = device
        self.rate = rate
        self.channels = channels
        self.period_frames = rate * period_ms // 1000
        self._periods = periods
        self.underruns = 0
        with alsa_errors() as said:
            try:
                self._pcm = alsaaudio.PCM(alsaaudio.PCM_PLAYBACK, alsaaudio.PCM_NORMAL,
                                          device=device, rate=rate, channels=channels,
                                          format=alsaaudio.PCM_FORMAT_S16_LE,
                                          periodsize=self.period_frames, periods=periods)
            except alsaaudio.ALSAAudioError as exc:
                raise DeviceError(f"speaker {device!r}: {exc}{_cause(said)}") from None

    def write(self, pcm: bytes) -> None:
        if self.channels == 2:
            mono = np.frombuffer(pcm, dtype="<i2")
            pcm = np.repeat(mono, 2).tobytes()
        try:
            n = self._pcm.write(pcm)
        except alsaaudio.ALSAAudioError as exc:
            raise DeviceError(f"speaker {self.name!r}: {exc}") from None
        if n < 0:
            self.underruns += 1

    def drop(self) -> None:
        with contextlib.suppress(alsaaudio.ALSAAudioError):
            self._pcm.drop()

    def pause(self, on: bool) -> bool:
        """Stop the device's clock where it stands, keeping what it holds (or restart
        it); False when the device cannot pause (the player then feeds it silence)."""
        try:
            self._pcm.pause(1 if on else 0)
        except alsaaudio.ALSAAudioError:
            return False
        return True

    def delay_s(self) -> float:
        try:
            avail: int = self._pcm.avail()
        except alsaaudio.ALSAAudioError:
            return 0.0
        queued = self.period_frames * self._periods - max(0, avail)
        return max(0, queued) / self.rate

    def close(self) -> None:
        self._pcm.close()


# ------------------------------------------------------------------ libasound's messages

# snd_lib_error_handler_t is variadic; the arguments after fmt cannot be read from ctypes,
# so a message keeps its format with each conversion shown as "?".
_ErrorHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_char_p)
_CONVERSION = re.compile(r"%[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlLqjzt]*[a-zA-Z%]")
_lock = threading.Lock()
_local = threading.local()  # .sink: the list collecting this thread's messages
_users = 0  # open alsa_errors() blocks, on any thread
_lib: ctypes.CDLL | None = None


def alsa_message(function: str, err: int, fmt: str) -> str:
    """One libasound error as text: "function: message (system error)"."""
    text = _CONVERSION.sub(lambda m: "%" if m.group() == "%%" else "?", fmt).strip()
    if err and _lib is not None:
        text += f" ({_lib.snd_strerror(err).decode(errors='replace')})"
    return f"{function}: {text}" if function else text


def _on_error(file: bytes | None, line: int, function: bytes | None, err: int,
              fmt: bytes | None) -> None:
    try:
        text = alsa_message((function or b"").decode(errors="replace"), err,
                            (fmt or b"").decode(errors="replace"))
        sink = getattr(_local, "sink", None)
        if sink is not None:
            sink.append(text)
        else:  # another thread's ALSA call while a block is open elsewhere
            log.warning("libasound: %s", text)
    except Exception:  # an exception must not cross back into C
        pass


_handler = _ErrorHandler(_on_error)  # referenced for the life of the process


def _set_handler(on: bool) -> None:
    global _lib
    try:
        if _lib is None:
            lib = ctypes.CDLL("libasound.so.2")  # the copy pyalsaaudio has loaded
            lib.snd_lib_error_set_handler.argtypes = [_ErrorHandler]
            lib.snd_strerror.restype = ctypes.c_char_p
            lib.snd_strerror.argtypes = [ctypes.c_int]
            _lib = lib
        _lib.snd_lib_error_set_handler(_handler if on else _ErrorHandler())  # NULL: its own
    except (OSError, AttributeError):
        pass  # no libasound to quiet: its messages go to stderr as before


def _cause(said: list[str]) -> str:
    """libasound's first message (the cause; later ones are its consequences)."""
    return f" (libasound: {said[0]})" if said else ""


@contextlib.contextmanager
def alsa_errors() -> Iterator[list[str]]:
    """Collect libasound's error messages from ALSA calls this thread makes in the block,
    instead of libasound printing them to stderr. Outside every block, stderr again."""
    global _users
    seen: list[str] = []
    outer = getattr(_local, "sink", None)
    with _lock:
        if _users == 0:
            _set_handler(True)
        _users += 1
    _local.sink = seen
    try:
        yield seen
    finally:
        _local.sink = outer
        if outer is not None:  # an enclosing block hears everything said inside it
            outer.extend(seen)
        with _lock:
            _users -= 1
            if _users == 0:
                _set_handler(False)
