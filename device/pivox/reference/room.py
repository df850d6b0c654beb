"""Synthetic rooms for measuring and testing the echo canceller where no room exists.

A room impulse response: the direct path from speaker to microphone after `delay_s`, six
early reflections within 40 ms of it, and a diffuse tail decaying by 60 dB in `rt60_s` (a
small furnished living room is 0.25-0.4 s). Seeded, so a figure can be reproduced.
"""

from __future__ import annotations

import numpy as np

from pivox.core.formats import MIC_RATE


def room_ir(delay_s: float, rng: np.random.Generator, rt60_s: float = 0.25) -> np.ndarray:
    d = int(delay_s * MIC_RATE)
    n = int(rt60_s * MIC_RATE)
    ir = np.zeros(d + n + 200)
    ir[d] = 0.3
    for _ in range(6):
        ir[d + rng.integers(40, 600)] += rng.normal(0, 0.12)
    ir[d + 100 : d + 100 + n] += rng.normal(0, 1, n) * 0.03 * np.exp(-np.arange(n) / (n / 6.9))
    return ir
