"""The real `pivox run` process on real libasound, heard and spoken to in real time.

In CI the rig is PulseAudio through ALSA's pulse plugin (tests/hil/rig.py); on a Pi,
scripts/hil-loopback runs the same scenarios over snd-aloop.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from processes import DaemonProcess, ServerThread
from rig import PulseRig, Recorder

from pivox.audio.wavfile import read_wav

DATA = Path(str(resources.files("pivox") / "data"))
LOUD = 400  # well above the null sink's digital silence, well below speech


def demo_speech() -> tuple[bytes, dict]:
    return read_wav(DATA / "demo_mic.wav"), json.loads((DATA / "demo_mic.json").read_text())


def loud_seconds(rig_rec) -> float:
    x, _ = rig_rec.samples()
    return float((np.abs(x) > LOUD).sum()) / 48000


def converse(rig: PulseRig, d: DaemonProcess) -> None:
    pcm, _ = demo_speech()
    rig.feeder.say(pcm)
    d.wait_state("speaking", 15)
    d.wait_state("idle", 25)


def test_wake_word_and_question_in_reply_heard_at_the_speaker(
        rig: PulseRig, server: ServerThread, tmp_path: Path) -> None:
    rec = rig.record()
    d = DaemonProcess(tmp_path, rig, server.url)
    try:
        d.wait_state("idle", 20)
        converse(rig, d)
        assert loud_seconds(rec) > 1.0, "the reply was not heard at the speaker"
        st = d.status()
        assert st["wake"]["last_detection"] == "okay_nabu"
        assert st["audio"]["dropped_frames"] == 0
    finally:
        rec.stop()
        assert d.stop() == 0


def test_barge_in_silences_the_speaker_within_60_ms(
        rig: PulseRig, server: ServerThread, tmp_path: Path) -> None:
    pcm, manifest = demo_speech()
    question = pcm[int(manifest["speech_start_s"] * 16000) * 2 :]
    rec = rig.record()
    d = DaemonProcess(tmp_path, rig, server.url, "[conversation]\nduplex = \"full\"\n")
    try:
        d.wait_state("idle", 20)
        rig.feeder.say(pcm)
        d.wait_state("speaking", 15)
        # The user talks over the reply once it is heard: what the daemon has written is
        # still in the device's buffer for a while (the sound server's latency here).
        heard_from = wait_heard(rec, time.monotonic(), 0.2)
        rig.feeder.say(question)  # the user talks over the reply
        d.wait_state("listening", 10)
        t_int = server.interrupted_at()
        assert t_int is not None, "the server did not interrupt"
        assert t_int > heard_from, "the server interrupted before the reply was heard"
        x, t = recorded_until(rec, t_int + 0.6)  # let it catch up past the interruption
        before = (t > t_int - 0.15) & (t < t_int)
        assert (np.abs(x[before]) > LOUD).any(), "the speaker was not playing when interrupted"
        gap = silence_after(x, t, t_int) - t_int
        print(f"barge-in: speaker silent {gap * 1000:.0f} ms after interrupted")
        assert gap < 0.060
    finally:
        rec.stop()
        d.stop()


def wait_heard(rec: Recorder, since: float, seconds: float, timeout_s: float = 5.0) -> float:
    """Waits until the speaker recording has been loud after `since` and then carried on
    for `seconds`; returns when it first was."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        x, t = rec.samples()
        loud = t[(t > since) & (np.abs(x) > LOUD)]
        if len(loud) and t[-1] >= loud[0] + seconds:
            return float(loud[0])
        time.sleep(0.02)
    raise AssertionError(f"the reply was not heard at the speaker within {timeout_s} s")


def recorded_until(rec: Recorder, t_end: float, timeout_s: float = 5.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The speaker recording once it reaches monotonic time `t_end`; a recorder that stalls
    fails the test within `timeout_s` of that time instead of spinning forever."""
    deadline = max(t_end, time.monotonic()) + timeout_s
    while True:
        x, t = rec.samples()
        if len(t) and t[-1] >= t_end:
            return x, t
        if time.monotonic() > deadline:
            got = f"{t_end - t[-1]:.2f} s short of" if len(t) else "nothing by"
            raise AssertionError(f"the speaker recording stalled: {got} the time wanted")
        time.sleep(0.02)


def silence_after(x: np.ndarray, t: np.ndarray, t0: float, window_s: float = 0.4) -> float:
    """Time of the first sample at or after t0 - 0.1 s that starts `window_s` of quiet."""
    loud = np.abs(x) > LOUD
    win = int(window_s * 48000)
    start = int(np.searchsorted(t, t0 - 0.1))
    for i in range(start, len(x) - win):
        if not loud[i : i + win].any():
            return float(t[i])
    raise AssertionError("the speaker never fell silent")


def test_a_stalled_reader_is_an_overrun_and_audio_carries_on(
        rig: PulseRig, server: ServerThread, tmp_path: Path) -> None:
    rec = rig.record()
    d = DaemonProcess(tmp_path, rig, server.url)
    try:
        d.wait_state("idle", 20)
        d.pause(1.0)  # the whole process stalls, as under memory pressure on a Pi Zero
        st = d.wait_state(lambda s: s["audio"]["overruns"] >= 1, 5)
        frames = st["audio"]["frames"]
        d.wait_state(lambda s: s["audio"]["frames"] > frames + 25, 5)
        converse(rig, d)  # still hears and answers, without a restart
        assert loud_seconds(rec) > 1.0
    finally:
        rec.stop()
        assert d.stop() == 0


def test_microphone_removed_then_restored(
        rig: PulseRig, server: ServerThread, tmp_path: Path) -> None:
    if not rig.can_remove_mic:
        pytest.skip("this rig's microphone cannot be unplugged")
    d = DaemonProcess(tmp_path, rig, server.url)
    try:
        d.wait_state("idle", 20)
        pid = d.proc.pid
        rig.remove_mic()
        st = d.wait_state("error", 10)
        assert "pivox_mic" in st["reason"]
        end = time.monotonic() + 2  # the journal's writer thread may be a moment behind
        while "problem" not in (log := d.log.read_text()) and time.monotonic() < end:
            time.sleep(0.05)
        assert "pivox_mic" in log and "problem" in log  # one clear journal line
        rig.restore_mic()
        st = d.wait_state("idle", 20)
        frames = st["audio"]["frames"]
        d.wait_state(lambda s: s["audio"]["frames"] > frames + 25, 5)
        assert d.proc.pid == pid and d.proc.poll() is None
    finally:
        assert d.stop() == 0
