"""`pivox demo --json`, the command a newcomer runs first, run for real (about 20 s).

Both scenarios go through the real daemon and the bundled reference server: a conversation
whose reply reaches the speaker file, and an offline speaker that says so and recovers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np


def test_demo_json_reports_a_whole_conversation_and_an_offline_recovery(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pivox", "demo", "--json", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    result = json.loads(lines[-1])  # the JSON object is the last line
    assert done.returncode == 0 and result["ok"] is True, f"{done.stdout}\n{done.stderr}"

    online = [s for i, s in enumerate(result["online_states"])
              if i == 0 or result["online_states"][i - 1] != s]
    assert online == ["booting", "idle", "listening", "thinking", "speaking", "idle"]
    assert result["offline_states"][-2:] == ["offline", "idle"]
    assert {"listening", "thinking", "speaking", "offline"} <= set(result["states"])
    assert result["offline_prompt_played"] is True
    assert result["offline_recovered"] is True

    assert 0 < result["wake_latency_ms"] < 1000
    assert 0 < result["first_reply_audio_ms"] < 5000
    assert result["reply_audio_s"] > 1.0
    assert result["bytes_up"] > 16000 * 2 and result["bytes_down"] > 24000 * 2
    assert result["audio_dropped_ms"] == 0

    wav = Path(result["speaker_wav"])  # what the speaker played holds the reply
    assert wav.is_relative_to(tmp_path)
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert (np.abs(x.astype(np.int32)) > 500).sum() / rate > 0.8
