"""Earcons and spoken prompts: every sound the machine can ask for exists and is audible."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from pivox.audio import earcons
from pivox.audio.earcons import EARCONS, PROMPTS, earcon, prompt, sound
from pivox.core import handlers


def samples(pcm: bytes) -> np.ndarray:
    assert len(pcm) % 2 == 0
    return np.frombuffer(pcm, dtype="<i2").astype(float)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("name", EARCONS)
def test_earcons_are_short_audible_and_click_free_at_any_rate(name: str, rate: int):
    x = samples(earcon(name, rate))
    assert len(x) == round(0.15 * rate)
    assert 0.1 * 32767 < np.max(np.abs(x)) <= 0.25 * 32767 + 1  # heard, never loud
    edge = round(0.001 * rate)
    assert np.max(np.abs(x[:edge])) < 0.01 * 32767  # fades in ...
    assert np.max(np.abs(x[-edge:])) < 0.01 * 32767  # ... and out: no click


def test_wake_chime_rises_and_done_chime_falls():
    """Rising reads as "listening", falling as "finished", across languages."""
    rate = 24000
    first, last = slice(0, round(0.05 * rate)), slice(round(0.07 * rate), round(0.12 * rate))
    wake, done = samples(earcon("wake", rate)), samples(earcon("done", rate))
    assert dominant_hz(wake[first], rate) < dominant_hz(wake[last], rate)
    assert dominant_hz(done[first], rate) > dominant_hz(done[last], rate)


@pytest.mark.parametrize("name", PROMPTS)
def test_prompts_are_bundled_speech_at_the_playback_rate(name: str):
    x = samples(prompt(name))
    assert 0.5 < len(x) / earcons.RATE < 6.0
    assert np.sqrt(np.mean(x**2)) > 0.02 * 32767  # speech, not silence
    assert prompt(name) is prompt(name)  # read from the package once


def test_every_sound_the_machine_plays_exists():
    names = set(re.findall(r'PlayPrompt\("(\w+)"\)', inspect.getsource(handlers)))
    assert names and names <= set(EARCONS) | set(PROMPTS)
    for name in names:
        assert len(sound(name)) > 0
    assert sound("wake") == earcon("wake", 24000) and sound("mute") == prompt("mute")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="no earcon named 'beep'"):
        earcon("beep")
    with pytest.raises(ValueError, match="offline, apology"):
        prompt("hello")
    with pytest.raises(KeyError):
        sound("hello")


@pytest.mark.parametrize("name", earcons.ALERTS)
def test_alerts_are_loud_enough_for_the_next_room_and_click_free(name: str):
    x = samples(sound(name))
    assert 0.5 <= len(x) / earcons.RATE <= 1.0
    assert 0.3 * 32767 < np.max(np.abs(x)) <= 0.5 * 32767 + 1
    edge = round(0.001 * earcons.RATE)  # the same 5 ms fade-in, at a louder level
    assert np.max(np.abs(x[:edge])) < 0.03 * 32767
    assert np.max(np.abs(x[-edge:])) < 0.01 * 32767


def test_onsets_find_each_ring_in_a_recording_at_any_volume_and_nothing_in_noise() -> None:
    import soxr

    rate = 48000
    ring = soxr.resample(np.frombuffer(earcons.sound("ring"), "<i2").astype(np.float32),
                         earcons.RATE, rate) * 0.3  # quieter than it was made
    x = np.zeros(rate * 4, dtype=np.float32)
    for at in (0.5, 2.25):
        i = int(at * rate)
        x[i : i + len(ring)] += ring
    rng = np.random.default_rng(1)
    x += rng.normal(0, 20, len(x)).astype(np.float32)
    found = earcons.onsets("ring", x, rate)
    assert [round(i / rate, 3) for i in found] == [0.5, 2.25]
    assert earcons.onsets("ring", rng.normal(0, 3000, rate * 2), rate) == []
