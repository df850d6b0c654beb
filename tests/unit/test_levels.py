"""The room's acoustic context from real audio levels."""

from __future__ import annotations

import numpy as np

from pivox.audio.levels import AcousticContext


def frames(level: float, n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(0, level, 320), -32768, 32767).astype("<i2").tobytes()
            for _ in range(n)]


def test_noise_floor_follows_the_quiet_room_not_the_talking() -> None:
    ctx = AcousticContext()
    for f in frames(30, 200):  # a quiet room, about -60 dBFS
        ctx.update(f, speaking=False)
    quiet = ctx.noise_floor_dbfs
    assert -65 < quiet < -55
    for f in frames(3000, 50, seed=1):  # a second of loud speech barely moves the floor
        ctx.update(f, speaking=True)
    assert ctx.noise_floor_dbfs < quiet + 6
    assert -25 < ctx.speech_dbfs < -15


def test_a_noisy_kitchen_makes_the_speech_detector_stricter() -> None:
    quiet, loud = AcousticContext(), AcousticContext()
    for f in frames(30, 300):
        quiet.update(f, speaking=False)
    for f in frames(1000, 3000):  # a range hood: about -30 dBFS for a minute
        loud.update(f, speaking=False)
    assert quiet.speech_threshold() == 0.5
    assert 0.7 <= loud.speech_threshold() <= 0.8


def test_clipping_is_counted() -> None:
    ctx = AcousticContext()
    x = np.zeros(320, dtype="<i2")
    x[:5] = 32767
    x[5:7] = -32768
    ctx.update(x.tobytes(), speaking=False)
    assert ctx.snapshot()["clipped_samples"] == 7


def test_a_frame_held_at_negative_full_scale_is_clipped() -> None:
    """np.abs(-32768) is -32768 in int16: the peak test must not wrap."""
    ctx = AcousticContext()
    ctx.update(np.full(320, -32768, dtype="<i2").tobytes(), speaking=False)
    assert ctx.snapshot()["clipped_samples"] == 320
