"""Acoustic echo cancellation with libspeexdsp's canceller, through a small ctypes binding.

Why a binding of our own: the `speexdsp` package on PyPI is a source package that needs
swig and libspeexdsp-dev to build on every device, while the library itself
(libspeexdsp1) ships with Debian and Raspberry Pi OS (PulseAudio depends on it) and ctypes
needs no compiler. The canceller is speex's MDF adaptive filter; its preprocessor adds
residual-echo suppression and, optionally, noise suppression and automatic gain.

`EchoReference` lines up what the speaker played with what the microphone hears: the
playback thread adds every period it writes with the time it will be heard (write time
plus the device's reported delay), and the capture thread asks for the reference covering
each microphone frame, a little early so the reference always leads its echo.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections import deque

import numpy as np

RATE = 16000
STEP = 160  # 10 ms: the canceller's frame
LATENCY = STEP  # the preprocessor's overlap-add delays the output by one frame
_ECHO_SET_SAMPLING_RATE = 24
_PP_SET_DENOISE = 0
_PP_SET_AGC = 2
_PP_SET_NOISE_SUPPRESS = 18
_PP_SET_ECHO_SUPPRESS = 20
_PP_SET_ECHO_SUPPRESS_ACTIVE = 22
_PP_SET_ECHO_STATE = 24


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise OSError(f"libspeexdsp is not installed ({exc}); install libspeexdsp1") from None
    vp, i16p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.restype = vp
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_cancellation.argtypes = [vp, i16p, i16p, i16p]
    lib.speex_echo_ctl.argtypes = [vp, ctypes.c_int, vp]
    lib.speex_echo_state_reset.argtypes = [vp]
    lib.speex_echo_state_destroy.argtypes = [vp]
    lib.speex_preprocess_state_init.restype = vp
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_ctl.argtypes = [vp, ctypes.c_int, vp]
    lib.speex_preprocess_run.argtypes = [vp, i16p]
    lib.speex_preprocess_state_destroy.argtypes = [vp]
    return lib


class SpeexEcho:
    """One canceller for 16 kHz mono s16. Not thread-safe: owned by the capture thread."""

    def __init__(self, tail_ms: int = 200, denoise: bool = False, agc: bool = False,
                 suppress_db: int = -60, suppress_active_db: int = -40) -> None:
        self._lib = lib = _load()
        self._echo = lib.speex_echo_state_init(STEP, RATE * tail_ms // 1000)
        rate = ctypes.c_int(RATE)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._pre = lib.speex_preprocess_state_init(STEP, RATE)
        lib.speex_preprocess_ctl(self._pre, _PP_SET_ECHO_STATE, self._echo)
        # speex applies residual-echo suppression through its denoiser's gain, so the
        # denoiser always runs; without `denoise` it may take away at most 3 dB of noise.
        for option, value in ((_PP_SET_DENOISE, 1), (_PP_SET_AGC, int(agc)),
                              (_PP_SET_NOISE_SUPPRESS, -15 if denoise else -3),
                              (_PP_SET_ECHO_SUPPRESS, suppress_db),
                              (_PP_SET_ECHO_SUPPRESS_ACTIVE, suppress_active_db)):
            arg = ctypes.c_int(value)
            lib.speex_preprocess_ctl(self._pre, option, ctypes.byref(arg))
        self._out = np.zeros(STEP, dtype=np.int16)

    def process(self, mic: bytes, ref: bytes) -> bytes:
        """Remove the echo of `ref` (what the speaker played) from `mic`. Equal lengths,
        a multiple of 10 ms."""
        m = np.frombuffer(mic, dtype=np.int16)
        r = np.frombuffer(ref, dtype=np.int16)
        out = np.empty_like(m)
        i16p = ctypes.POINTER(ctypes.c_int16)
        lib = self._lib
        for k in range(0, len(m) - STEP + 1, STEP):
            mk = np.ascontiguousarray(m[k : k + STEP])
            rk = np.ascontiguousarray(r[k : k + STEP])
            lib.speex_echo_cancellation(self._echo, mk.ctypes.data_as(i16p),
                                        rk.ctypes.data_as(i16p),
                                        self._out.ctypes.data_as(i16p))
            lib.speex_preprocess_run(self._pre, self._out.ctypes.data_as(i16p))
            out[k : k + STEP] = self._out
        return out.tobytes()

    def reset(self) -> None:
        self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        if self._echo:
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._lib.speex_echo_state_destroy(self._echo)
            self._echo = self._pre = None

    def __del__(self) -> None:
        self.close()


class EchoReference:
    """What the speaker played, at 16 kHz, on the monotonic clock of when it is heard.

    Thread-safe: the playback thread adds, the capture thread reads. Bounded to `keep_s`.
    """

    def __init__(self, lead_ms: float = 20.0, keep_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._chunks: deque[tuple[float, np.ndarray]] = deque()  # (heard_at, samples)
        self._lead = lead_ms / 1000
        self._keep = keep_s
        self.last_sound_at = 0.0  # when the last non-silent reference is heard

    def add(self, pcm16k: np.ndarray, heard_at: float) -> None:
        with self._lock:
            self._chunks.append((heard_at, pcm16k))
            if pcm16k.any():
                self.last_sound_at = heard_at + len(pcm16k) / RATE
            while self._chunks and self._chunks[0][0] < heard_at - self._keep:
                self._chunks.popleft()

    def read(self, start: float, n: int) -> bytes:
        """`n` samples of what is heard from `start` (minus the lead); zeros where unknown."""
        start -= self._lead
        out = np.zeros(n, dtype=np.int16)
        with self._lock:
            for at, samples in self._chunks:
                off = round((at - start) * RATE)  # where this chunk lands in `out`
                if off >= n or off + len(samples) <= 0:
                    continue
                a, b = max(0, off), min(n, off + len(samples))
                out[a:b] = samples[a - off : b - off]
        return out.tobytes()

    def active(self, now: float, tail_s: float = 0.3) -> bool:
        """Whether the speaker's sound may still be in the room."""
        return now - self.last_sound_at < tail_s + self._lead
