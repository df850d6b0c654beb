"""Echo cancellation quality and cost on synthetic echo paths.

The far end is the bundled reply speech; the echo is it convolved with a room impulse
response (direct path after 20-80 ms, a few early reflections, a diffuse tail with RT60
0.25 s), plus microphone noise. ERLE is mic power over output power, measured after the
first 2 s (the canceller's convergence). Double talk: near-end speech is added while the
far end plays; the output must still correlate with the clean near-end speech. CPU: the
canceller plus the rest of the capture path (wake engine, speech detector) at 16 kHz.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from pivox.audio.echo import LATENCY, SpeexEcho
from pivox.audio.vad import SpeechDetector
from pivox.audio.wavfile import read_wav
from pivox.reference.session import VOICES
from pivox.wake import make_engine

RATE = 16000


def _speech(*names: str) -> np.ndarray:
    return np.concatenate([np.frombuffer(read_wav(VOICES / f"{n}.wav"), dtype=np.int16)
                           for n in names]).astype(np.float64)


def room_ir(delay_s: float, rng: np.random.Generator, rt60_s: float = 0.25) -> np.ndarray:
    d = int(delay_s * RATE)
    ir = np.zeros(d + int(rt60_s * RATE) + 200)
    ir[d] = 0.3
    for _ in range(6):
        ir[d + rng.integers(40, 600)] += rng.normal(0, 0.12)
    n = int(rt60_s * RATE)
    ir[d + 100 : d + 100 + n] += rng.normal(0, 1, n) * 0.03 * np.exp(-np.arange(n) / (n / 6.9))
    return ir


def _cancel(mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    aec = SpeexEcho()
    out = aec.process(np.clip(mic, -32768, 32767).astype(np.int16).tobytes(),
                      np.clip(far, -32768, 32767).astype(np.int16).tobytes())
    return np.frombuffer(out, dtype=np.int16).astype(np.float64)


def _db(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(a**2) / max(np.mean(b**2), 1e-9)))


def run() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    far = _speech("weather", "fact", "timer")
    erle, first_s = [], []
    for delay in (0.02, 0.05, 0.08):
        echo = np.convolve(far, room_ir(delay, rng))[: len(far)]
        mic = echo + rng.normal(0, 5, len(far))
        out = _cancel(mic, far)
        erle.append(_db(mic[2 * RATE :], out[2 * RATE :]))
        per_s = [_db(mic[s : s + RATE // 2], out[s : s + RATE // 2])
                 for s in range(0, len(far) - RATE // 2, RATE // 2)]
        first_s.append(next((i / 2 for i, e in enumerate(per_s) if e >= 20), float("nan")))
    # Double talk: the user speaks over the reply (from 4 s on).
    near = np.frombuffer(read_wav(VOICES.parent.parent / "data" / "demo_mic.wav"),
                         dtype=np.int16).astype(np.float64)[int(2.2 * RATE) :]
    echo = np.convolve(far, room_ir(0.05, rng))[: len(far)]
    start = 4 * RATE
    clean = np.zeros(len(far))
    clean[start : start + len(near)] = near[: len(far) - start]
    out = _cancel(echo + clean + rng.normal(0, 5, len(far)), far)
    n = min(len(near), len(far) - start - LATENCY)
    corr = float(np.corrcoef(out[start + LATENCY : start + LATENCY + n],
                             clean[start : start + n])[0, 1])
    # CPU of the capture path with the canceller, per second of audio.
    mic = (echo + rng.normal(0, 5, len(far))).astype(np.int16).tobytes()
    ref = far.astype(np.int16).tobytes()
    aec, wake, vad = SpeexEcho(), make_engine(), SpeechDetector()
    t = time.process_time()
    for i in range(0, len(mic) - 640, 640):
        frame = aec.process(mic[i : i + 640], ref[i : i + 640])
        wake.process(frame)
        vad.process(frame)
    cpu = (time.process_time() - t) / (len(far) / RATE) * 100
    return {
        "erle_db": round(min(erle), 1),
        "erle_db_by_delay": {f"{d}ms": round(e, 1) for d, e in zip((20, 50, 80), erle,
                                                                  strict=True)},
        "erle_20db_after_s": max(first_s),
        "double_talk_corr": round(corr, 3),
        "cpu_percent": round(cpu, 2),
        "how": "speex MDF canceller (200 ms tail) + residual echo suppression; bundled "
               "reply speech through a synthetic room (20/50/80 ms, RT60 0.25 s) with noise; "
               "ERLE after the first 2 s (worst delay); double talk = correlation of the "
               "output with the clean near-end speech; CPU = canceller + wake engine + "
               "speech detector per audio second",
    }


if __name__ == "__main__":
    print(json.dumps(run()))
