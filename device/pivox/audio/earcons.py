"""The speaker's own sounds: short earcons made here, and bundled spoken prompts.

All at 24 kHz s16 mono by default, the rate of reply audio, so they take the same playback
path. Earcons are computed rather than shipped: a few lines of numpy are smaller than a
WAV and can be made at any device rate. The wake chime is short and quiet so it never
masks the user's first words (the microphone keeps capturing through it; the pre-roll
covers the rest). Prompts are espeak-ng recordings made by scripts/make-fixtures, so the
offline prompt works with no network at all.
"""

from __future__ import annotations

import functools
import io
import wave
from importlib import resources

import numpy as np

from pivox.core.formats import MODEL_RATE

RATE = MODEL_RATE  # played as the model's replies are
PROMPTS = ("offline", "apology", "error", "mute", "unmute")
EARCONS = ("wake", "done", "no_speech")

# name: (note frequencies in Hz, seconds between note onsets, total seconds, peak level)
_CHIMES: dict[str, tuple[tuple[float, ...], float, float, float]] = {
    "wake": ((659.25, 880.0), 0.06, 0.15, 0.25),  # E5 -> A5, rising: "I'm listening"
    "done": ((880.0, 659.25), 0.06, 0.15, 0.18),  # A5 -> E5, falling and softer: "over"
    # D5 -> A4, low and soft: "I heard nothing, I've stopped listening"
    "no_speech": ((587.33, 440.0), 0.06, 0.15, 0.15),
}

# Alerts call someone from across the room: longer and louder than the earcons above.
ALERTS = ("ring", "announce")
_ALERT_CHIMES: dict[str, tuple[tuple[float, ...], float, float, float]] = {
    # E6 C6 E6 C6: one burst of a kitchen timer's ring; repeated with a pause between
    "ring": ((1318.51, 1046.50, 1318.51, 1046.50), 0.12, 0.6, 0.5),
    # G5 -> D#5, the "ding-dong" before an announcement
    "announce": ((783.99, 622.25), 0.35, 1.0, 0.35),
}


def _chime(notes: tuple[float, ...], step_s: float, length_s: float, level: float,
           rate: int) -> np.ndarray:
    """Bell-like notes (fast attack, exponential decay, a soft octave overtone), each
    starting `step_s` after the last, inside an overall fade so neither end clicks."""
    n = round(length_s * rate)
    out = np.zeros(n)
    for i, freq in enumerate(notes):
        start = round(i * step_s * rate)
        t = np.arange(n - start) / rate
        env = (1 - np.exp(-t / 0.003)) * np.exp(-t / 0.07)
        tone = np.sin(2 * np.pi * freq * t) + 0.25 * np.sin(4 * np.pi * freq * t)
        out[start:] += tone * env
    ramp = np.arange(n)
    out *= np.clip(np.minimum(ramp / (0.005 * rate), ramp[::-1] / (0.03 * rate)), 0, 1)
    out *= level / np.max(np.abs(out))
    return np.round(out * 32767).astype("<i2")


@functools.cache
def earcon(name: str, rate: int = RATE) -> bytes:
    """A synthesized earcon as s16le mono at `rate`. Raises ValueError for an unknown name."""
    chimes = _CHIMES | _ALERT_CHIMES
    if name not in chimes:
        raise ValueError(f"no earcon named {name!r}; choose one of "
                         f"{', '.join(EARCONS + ALERTS)}")
    notes, step_s, length_s, level = chimes[name]
    return _chime(notes, step_s, length_s, level, rate).tobytes()


@functools.cache
def prompt(name: str) -> bytes:
    """A bundled spoken prompt as 24 kHz s16le mono, read once and then cached.

    Raises ValueError for an unknown name or a bundled file in the wrong format.
    """
    if name not in PROMPTS:
        raise ValueError(f"no prompt named {name!r}; choose one of {', '.join(PROMPTS)}")
    blob = (resources.files("pivox") / "data" / f"prompt_{name}.wav").read_bytes()
    with wave.open(io.BytesIO(blob), "rb") as w:
        fmt = (w.getframerate(), w.getsampwidth(), w.getnchannels())
        if fmt != (RATE, 2, 1):
            raise ValueError(f"prompt_{name}.wav is {fmt[0]} Hz, {8 * fmt[1]}-bit, "
                             f"{fmt[2]} channel(s); expected {RATE} Hz 16-bit mono "
                             "(regenerate with scripts/make-fixtures)")
        return w.readframes(w.getnframes())


def speech(text: str) -> bytes:
    """`text` spoken by espeak-ng at 24 kHz, or b"" where espeak-ng is not installed."""
    import shutil
    import subprocess
    import tempfile

    from pivox.audio.wavfile import read_wav

    if shutil.which("espeak-ng") is None:
        return b""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        try:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", f.name, text],
                           check=True, capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return b""
        return read_wav(f.name, RATE)


def sound(name: str) -> bytes:
    """The 24 kHz sound for a PlayPrompt action. Raises KeyError for an unknown name."""
    if name in _CHIMES or name in _ALERT_CHIMES:
        return earcon(name)
    if name in PROMPTS:
        return prompt(name)
    raise KeyError(f"no sound named {name!r}")


def onsets(name: str, x: np.ndarray, rate: int, min_score: float = 0.85) -> list[int]:
    """Sample indices where the sound `name` starts in recording `x` (at `rate`): for
    checking what a speaker really played (diagnostics, test rigs). Normalised
    correlation, so the volume does not matter; `min_score` of 1.0 is an exact copy."""
    import soxr

    tpl = np.frombuffer(sound(name), "<i2").astype(np.float32)
    if rate != RATE:
        tpl = soxr.resample(tpl, RATE, rate)
    x = np.asarray(x, dtype=np.float32)
    if len(x) < len(tpl):
        return []
    corr = np.correlate(x, tpl, mode="valid")
    energy = np.sqrt(np.convolve(x**2, np.ones(len(tpl)), mode="valid")) * np.linalg.norm(tpl)
    score = corr / np.maximum(energy, 1e-9)
    found: list[int] = []
    i = 0
    while i < len(score):
        if score[i] > min_score:
            j = i + int(np.argmax(score[i : i + len(tpl)]))
            found.append(j)
            i = j + len(tpl)
        else:
            i += 1
    return found
