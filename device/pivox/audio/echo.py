"""Acoustic echo cancellation with libspeexdsp's canceller, through a small ctypes binding.

Why a binding of our own: the `speexdsp` package on PyPI is a source package that needs
swig and libspeexdsp-dev to build on every device, while the library itself
(libspeexdsp1) ships with Debian and Raspberry Pi OS (PulseAudio depends on it) and ctypes
needs no compiler. The canceller is speex's MDF adaptive filter; its preprocessor adds
residual-echo suppression and, optionally, noise suppression and automatic gain.

`EchoReference` lines up what the speaker played with what the microphone hears: the
playback thread adds every period it writes with the time it will be heard (write time
plus the device's reported delay), and the capture thread asks for the reference covering
each microphone frame, shifted (see DelayEstimator) so the reference always leads its echo.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections import deque

import numpy as np

from pivox.core.formats import FRAME_SAMPLES, MIC_RATE

STEP = FRAME_SAMPLES  # 20 ms: the canceller's frame (speex converges faster on 20 ms than on 10)
MAX_LAG_MS = 400  # the latest echo the delay finder looks for after its reference
REANCHOR_S = 0.03  # a playback timeline jump larger than this is real, not jitter
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
    """One canceller for 16 kHz mono s16. Not thread-safe: owned by the capture thread.

    `frame` samples at a time (the capture frame: 10, 20 or 30 ms); the output lags the
    input by one frame (`latency`, the preprocessor's overlap-add)."""

    def __init__(self, tail_ms: int = 200, denoise: bool = False, agc: bool = False,
                 suppress_db: int = -60, suppress_active_db: int = -40, frame: int = STEP
                 ) -> None:
        self._echo = self._pre = None  # so a failed load leaves nothing for close() to free
        self._lib = lib = _load()
        self.frame = self.latency = frame
        self._echo = lib.speex_echo_state_init(frame, MIC_RATE * tail_ms // 1000)
        rate = ctypes.c_int(MIC_RATE)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._pre = lib.speex_preprocess_state_init(frame, MIC_RATE)
        lib.speex_preprocess_ctl(self._pre, _PP_SET_ECHO_STATE, self._echo)
        # speex applies residual-echo suppression through its denoiser's gain, so the
        # denoiser always runs; without `denoise` it may take away at most 3 dB of noise.
        for option, value in ((_PP_SET_DENOISE, 1), (_PP_SET_AGC, int(agc)),
                              (_PP_SET_NOISE_SUPPRESS, -15 if denoise else -3),
                              (_PP_SET_ECHO_SUPPRESS, suppress_db),
                              (_PP_SET_ECHO_SUPPRESS_ACTIVE, suppress_active_db)):
            arg = ctypes.c_int(value)
            lib.speex_preprocess_ctl(self._pre, option, ctypes.byref(arg))
        self._out = np.zeros(frame, dtype=np.int16)
        # Mean square of the last call's output before residual suppression: what the
        # adaptive filter alone left. It cannot cancel a voice, only echo, so this tells the
        # two apart where the suppressor, which also ducks a voice over loud playback, cannot.
        self.linear_energy = 0.0

    def process(self, mic: bytes, ref: bytes) -> bytes:
        """Remove the echo of `ref` (what the speaker played) from `mic`: equal lengths,
        whole frames."""
        m = np.frombuffer(mic, dtype=np.int16)
        r = np.frombuffer(ref, dtype=np.int16)
        step = self.frame
        if len(m) % step or len(r) != len(m):
            raise ValueError(f"the canceller takes whole {step}-sample frames, "
                             f"got {len(m)} and {len(r)} samples")
        out = np.empty_like(m)
        i16p = ctypes.POINTER(ctypes.c_int16)
        lib = self._lib
        linear = 0.0
        for k in range(0, len(m), step):
            mk = np.ascontiguousarray(m[k : k + step])
            rk = np.ascontiguousarray(r[k : k + step])
            lib.speex_echo_cancellation(self._echo, mk.ctypes.data_as(i16p),
                                        rk.ctypes.data_as(i16p),
                                        self._out.ctypes.data_as(i16p))
            lin = self._out.astype(np.float32)
            linear += float(np.dot(lin, lin))
            lib.speex_preprocess_run(self._pre, self._out.ctypes.data_as(i16p))
            out[k : k + step] = self._out
        self.linear_energy = linear / max(1, len(m))
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

    def __init__(self, shift_ms: float = 0.0, keep_s: float = 3.0) -> None:
        self._lock = threading.Lock()
        self._chunks: deque[tuple[float, np.ndarray]] = deque()  # (heard_at, samples)
        # The reference for a microphone instant t is what the speaker played at t - shift.
        # DelayEstimator keeps it a little below the real echo delay, so the reference
        # always reaches the canceller before its echo does.
        self.shift = shift_ms / 1000
        self._keep = keep_s
        self.last_sound_at = 0.0  # when the last non-silent reference is heard
        self._next_at: float | None = None

    def add(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """Append what was just written. Successive periods are laid end to end (the write
        times jitter by milliseconds, which would tear the waveform apart); the estimate
        only re-anchors the timeline on a real jump (an underrun, a flush) and otherwise
        pulls it along slowly, to follow clock drift."""
        with self._lock:
            if self._next_at is not None and abs(heard_at - self._next_at) < REANCHOR_S:
                heard_at = self._next_at + 0.01 * (heard_at - self._next_at)
            self._next_at = heard_at + len(pcm16k) / MIC_RATE
            self._chunks.append((heard_at, pcm16k))
            if pcm16k.any():
                self.last_sound_at = heard_at + len(pcm16k) / MIC_RATE
            while self._chunks and self._chunks[0][0] < heard_at - self._keep:
                self._chunks.popleft()

    def read(self, start: float, n: int) -> bytes:
        """`n` samples of what was played from `start - shift`; zeros where unknown."""
        start -= self.shift
        out = np.zeros(n, dtype=np.int16)
        with self._lock:
            chunks = self._chunks
            # Chunks are in time order, give or take a flush's step back: walk back from
            # the newest only as far as this frame can reach, then lay them down in order
            # (a later chunk overrides an earlier one where they overlap).
            i = len(chunks)
            hits: list[tuple[int, np.ndarray]] = []
            while i > 0:
                i -= 1
                at, samples = chunks[i]
                off = round((at - start) * MIC_RATE)  # where this chunk lands in `out`
                if off + len(samples) <= 0:
                    if off + MIC_RATE // 2 < 0:
                        break  # half a second before: past any flush's step back
                    continue
                if off < n:
                    hits.append((off, samples))
        for off, samples in reversed(hits):
            a, b = max(0, off), min(n, off + len(samples))
            out[a:b] = samples[a - off : b - off]
        return out.tobytes()

    def active(self, now: float, tail_s: float = 0.3) -> bool:
        """Whether the speaker's sound may still be in the room."""
        return now - self.last_sound_at < tail_s + max(0.0, self.shift)


class DelayEstimator:
    """Finds how late the echo arrives relative to the reference, and how to change the
    reference's shift so it leads the echo by `target_ms`: device latencies that the drivers
    do not report (a sound server's buffers, a USB microphone's) would otherwise leave the
    reference behind its own echo, which no canceller can follow.

    Generalised cross-correlation with phase transform (GCC-PHAT) over the last `window_s`
    of microphone and reference: whitening the spectrum leaves one sharp peak at the echo's
    direct path, where plain correlation of speech smears over tens of milliseconds. A peak
    that does not stand `min_peak` times above the rest (the user talking, a reference too
    short or too quiet) gives no answer, and a move is only reported once two estimates in
    a row agree, so one odd second cannot throw away a learnt room.
    """

    def __init__(self, window_s: float = 1.0, max_lag_ms: int = MAX_LAG_MS, target_ms: int = 40,
                 min_peak: float = 8.0) -> None:
        self._n = int(window_s * MIC_RATE)
        self._max_lag = max_lag_ms * MIC_RATE // 1000
        self.target_ms = target_ms
        self._min_peak = min_peak
        self._mic: deque[np.ndarray] = deque()
        self._ref: deque[np.ndarray] = deque()
        self._count = 0
        self.last_lag_ms: float | None = None
        self._candidate: float | None = None

    def add(self, mic: bytes | np.ndarray, ref: bytes | np.ndarray) -> None:
        """s16 frames, or the same already as float32 (kept, not copied)."""
        for frame, into in ((mic, self._mic), (ref, self._ref)):
            into.append(frame if isinstance(frame, np.ndarray)
                        else np.frombuffer(frame, dtype=np.int16).astype(np.float32))
        self._count += len(self._mic[-1])
        while self._count - len(self._mic[0]) >= self._n:
            self._count -= len(self._mic.popleft())
            self._ref.popleft()

    def clear(self) -> None:
        self._mic.clear()
        self._ref.clear()
        self._count = 0

    def lag_ms(self) -> float | None:
        """Where the echo's direct path is, in ms after the reference; None if unclear."""
        if self._count < self._n:
            return None
        m = np.concatenate(self._mic)
        r = np.concatenate(self._ref)
        if not r.any() or not m.any():
            return None
        # Zero-padded past the longest lag, the circular correlation equals the linear one
        # at every lag looked at; a 5-smooth length, not the next power of two, and float32
        # spectra make it half the work on the capture thread.
        size = _fast_len(len(m) + self._max_lag)
        cross = np.fft.rfft(m, size) * np.conj(np.fft.rfft(r, size))
        cross /= np.abs(cross) + np.float32(1e-9)
        xc = np.fft.irfft(cross, size)
        lags = np.concatenate([xc[: self._max_lag + 1], xc[-self._max_lag :]])
        best = int(np.argmax(lags))
        if lags[best] < self._min_peak * float(np.sqrt(np.mean(lags**2))):
            return None
        lag = best if best <= self._max_lag else best - len(lags)
        return lag * 1000 / MIC_RATE

    def correction_s(self) -> float | None:
        """Seconds to add to the reference's shift, or None if the room gave no clear answer
        (or gave it only once)."""
        lag = self.lag_ms()
        if lag is None:
            return None
        agreed = self._candidate is not None and abs(lag - self._candidate) <= 2.0
        self._candidate = lag
        if not agreed:
            return None
        self.last_lag_ms = lag
        return (lag - self.target_ms) / 1000


def _fast_len(n: int) -> int:
    """The smallest length >= n whose only prime factors are 2, 3 and 5 (quick FFTs)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best
