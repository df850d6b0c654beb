"""The speaker's own sounds: short earcons made here, and bundled spoken prompts.

All at 24 kHz s16 mono, the rate of reply audio, so they take the same playback path.
The wake chime is short and quiet so it never masks the user's first words (the
microphone keeps capturing through it; the pre-roll covers the rest).
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from pivox.audio.wavfile import read_wav

RATE = 24000
PROMPTS = ("offline", "apology", "error", "mute", "unmute")


def _tone(freqs: tuple[float, ...], each_s: float, level: float = 0.25) -> bytes:
    n = int(each_s * RATE)
    fade = np.minimum(1, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.008 * RATE))
    t = np.arange(n) / RATE
    notes = [np.sin(2 * np.pi * f * t) * fade for f in freqs]
    x = np.concatenate(notes) * level
    return (x * 32767).astype("<i2").tobytes()


@functools.cache
def sound(name: str) -> bytes:
    """The sound for a PlayPrompt action. Raises KeyError for an unknown name."""
    if name == "wake":
        return _tone((660.0, 880.0), 0.07)
    if name in PROMPTS:
        path = resources.files("pivox") / "data" / f"prompt_{name}.wav"
        return read_wav(str(path), RATE)
    raise KeyError(f"no sound named {name!r}")
