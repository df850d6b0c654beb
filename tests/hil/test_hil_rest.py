"""A speaker with nothing to play rests: the device is paused, not fed silence, and
resumes without a click and with the echo reference still on the speaker's clock."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest
from rig import PulseRig

from pivox.audio.echo import EchoReference
from pivox.audio.playback import Player

TONE_HZ, AMP = 440.0, 8000


def tone(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (AMP * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


def first_loud(times: np.ndarray, x: np.ndarray, after: float) -> float:
    idx = np.flatnonzero((np.abs(x) > 400) & (times > after))
    assert len(idx), "nothing was heard"
    return float(times[idx[0]])


def reference_onset(ref: EchoReference) -> float:
    """When the echo reference says the first loud sample is heard."""
    return min(at + np.flatnonzero(np.abs(s) > 400)[0] / 16000
               for at, s in ref._chunks if (np.abs(s) > 400).any())


def stop(player: Player, rec: Any) -> None:
    player.stop()
    time.sleep(0.2)  # the recorder hears the last of it
    rec.stop()


def test_an_idle_speaker_rests_and_resumes_cleanly_on_time(
        rig: PulseRig, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(rig, PulseRig):
        pytest.skip("needs the PulseAudio rig's recorder")
    for k, v in rig.env.items():
        monkeypatch.setenv(k, v)
    assert os.environ["ALSA_CONFIG_PATH"].endswith("asoundrc")
    from pivox.audio.alsa import AlsaSink

    ref = EchoReference(keep_s=10)
    rec = rig.record()
    player = Player(lambda: AlsaSink(rig.spk_device, 48000), volume=1.0, jitter_ms=0,
                    echo_ref=ref, rest_after_s=0.5)
    player.start()
    try:
        end = time.monotonic() + 5
        while not player.stats.resting and time.monotonic() < end:
            time.sleep(0.05)
        written = player.stats.periods_written
        time.sleep(1.0)  # at rest: not one period written, though the thread beats
        assert player.stats.resting and player.stats.periods_written == written
        assert time.monotonic() - player.heartbeat < 0.5
        asked = time.monotonic()
        player.play(tone(0.5), "prompt:tone")
        time.sleep(1.2)
        assert player.stats.rests >= 1 and player.stats.periods_written > written + 20
    finally:
        stop(player, rec)
    x, t = rec.samples()
    heard = first_loud(t, x, asked - 0.05)
    assert heard - asked < 0.2, f"resumed {1000 * (heard - asked):.0f} ms after play()"
    # No click: the steepest step is no steeper than the tone's own (48 kHz, 440 Hz).
    around = (t > asked - 0.5) & (t < heard + 0.6)
    assert np.max(np.abs(np.diff(x[around]))) <= AMP * 2 * np.pi * TONE_HZ / 48000 * 1.2
    # The echo reference says when the tone was heard, to within a few milliseconds.
    onset = reference_onset(ref)
    assert abs(onset - heard) < 0.005, f"reference {1000 * (onset - heard):+.1f} ms off"


def test_silence_in_a_conversation_costs_no_echo_work_and_the_reference_stays_on_time(
        rig: PulseRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a conversation the device runs on silence (it never rests there); past the
    twin's window, that silence is not resampled into the reference again, and a reply
    after it is still placed where the speaker plays it."""
    if not isinstance(rig, PulseRig):
        pytest.skip("needs the PulseAudio rig's recorder")
    for k, v in rig.env.items():
        monkeypatch.setenv(k, v)
    from pivox.audio.alsa import AlsaSink
    from pivox.audio.playback import QUIET_REF_S

    ref = EchoReference(keep_s=30)
    rec = rig.record()
    player = Player(lambda: AlsaSink(rig.spk_device, 48000), volume=1.0, jitter_ms=0,
                    echo_ref=ref, rest_after_s=0.5)
    player.observe("state", {"state": "listening"})
    player.start()
    try:
        def written_after(periods: int) -> int:  # 20 ms periods; the rig starts slowly
            end = time.monotonic() + 10
            while player.stats.periods_written < periods and time.monotonic() < end:
                time.sleep(0.02)
            return player.stats.periods_written

        written = written_after(round((QUIET_REF_S + 0.2) / 0.02))
        fed = len(ref._chunks)
        assert written_after(written + 25) >= written + 25 and not player.stats.resting
        assert len(ref._chunks) == fed, "silence is still resampled into the reference"
        asked = time.monotonic()
        player.play(tone(0.5))
        player.finish()
        time.sleep(1.2)
    finally:
        stop(player, rec)
    x, t = rec.samples()
    heard = first_loud(t, x, asked - 0.05)
    onset = reference_onset(ref)
    assert abs(onset - heard) < 0.005, f"reference {1000 * (onset - heard):+.1f} ms off"
