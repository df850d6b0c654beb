"""A timer set by voice rings at the real-time speaker after the link dropped.

The real `pivox run` on real libasound (the PulseAudio rig): the recorded question goes in
at the microphone, the reference server answers it with a set_timer call, the server is
then stopped, and the ring earcon is found in the speaker's recording, with the time each
sample reached the recorder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from processes import DaemonProcess, ServerThread
from rig import PulseRig
from test_hil_daemon import demo_speech

from pivox.audio import earcons
from pivox.config import PlaybackConfig
from pivox.control import request
from pivox.daemon.alerts import RING_PERIOD_S


def ring_onsets(x: np.ndarray, t: np.ndarray, rate: int = 48000) -> list[float]:
    """Arrival times of each ring burst in the recording."""
    return [float(t[i]) for i in earcons.onsets("ring", x, rate, min_score=0.8)]  # via PulseAudio


def test_a_timer_set_by_voice_rings_at_the_speaker_after_the_link_drops(
        rig: PulseRig, tmp_path: Path) -> None:
    server = ServerThread(tool_call=("set_timer", {"seconds": 3, "label": "pasta"}))
    rec = rig.record()
    d = DaemonProcess(tmp_path, rig, server.url, f'[state]\nfile = "{tmp_path}/state.json"\n')
    stopped = False
    try:
        d.wait_state("idle", 20)
        pcm, _ = demo_speech()
        said = time.monotonic()
        rig.feeder.say(pcm)
        st = d.wait_state(lambda s: bool(s.get("timers")), 20)
        t_set = time.monotonic()
        server.stop()  # the Wi-Fi drops: the timer is the speaker's own
        stopped = True
        t_drop = time.monotonic()
        d.wait_state(lambda s: not s["link"]["connected"], 5)
        d.wait_state(lambda s: s.get("ringing") == ["pasta"], 6)
        time.sleep(4.0)  # two bursts, after the offline prompt
        x, t = rec.samples()
        onsets = ring_onsets(x, t)
        request(d.socket, "timers", action="stop")
        t_stop = time.monotonic()
        time.sleep(2.0)
        x2, t2 = rec.samples()
        after = ring_onsets(x2, t2)
    finally:
        rec.stop()
        code = d.stop()
        if not stopped:
            server.stop()
    assert code == 0
    assert onsets, "no ring was heard at the speaker"
    first = onsets[0]
    assert first > t_drop, (first, t_drop)
    # Due 3 s after it was set; the offline prompt that the drop set off plays first.
    prompt_s = len(earcons.prompt("offline")) / 2 / earcons.RATE
    due = max(3.0, t_drop - t_set + prompt_s)
    assert 2.9 < first - t_set < due + 0.6, (first, t_set, due)
    assert len(onsets) >= 2
    # Bursts apart, never piled up: queued RING_PERIOD_S apart, but the first may start a
    # moment late behind the prompt (its 0.1 s wait steps and two speaker periods).
    low = RING_PERIOD_S - 0.1 - 2 * PlaybackConfig().period_ms / 1000
    assert low < onsets[1] - onsets[0] < RING_PERIOD_S + 0.2, onsets
    assert not [o for o in after if o > t_stop + 0.7], (after, t_stop)  # stop silences it
    print(json.dumps({
        "question_said_at_s": 0.0, "timer_set_s": round(t_set - said, 2),
        "link_dropped_s": round(t_drop - said, 2), "ring_heard_s": round(first - said, 2),
        "set_to_ring_heard_s": round(first - t_set, 2), "offline_prompt_s": round(prompt_s, 2),
        "bursts_heard": len(onsets),
        "burst_gap_s": round(onsets[1] - onsets[0], 2),
        "status_timer": st["timers"][0]["label"]}))
