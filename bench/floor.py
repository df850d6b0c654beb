"""The rig's own floor for the CPU budget: a bare loop in its own process that only reads
the microphone PCM (16 kHz) and writes the speaker PCM (48 kHz) with the daemon's default
periods (pivox.config), as its two audio threads do, confined to a quota the same way. It
is clean when neither device over- or underran; a Pi's own `hw:` devices do not pay it
(the quota here also pays for libpulse inside the process)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.budget import FLOOR_S, ROOT, Quota, cpu_s


def _floor_child(seconds: float) -> dict[str, Any]:
    """The bare loop: the daemon's two device streams and nothing else."""
    import alsaaudio

    from pivox.config import CaptureConfig, PlaybackConfig

    mic, out = CaptureConfig(), PlaybackConfig()
    mic_period = mic.rate * mic.period_ms // 1000
    spk_period = out.rate * out.period_ms // 1000
    cap = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NORMAL, device="pivox_mic",
                        rate=mic.rate, channels=mic.channels,
                        format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=mic_period, periods=4)
    spk = alsaaudio.PCM(alsaaudio.PCM_PLAYBACK, alsaaudio.PCM_NORMAL, device="pivox_spk",
                        rate=out.rate, channels=out.channels,
                        format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=spk_period, periods=4)
    n = np.arange(spk_period)
    wave = np.sin(n * 2 * np.pi * 441 / out.rate) * 8000
    tone = np.repeat(wave, out.channels).astype("<i2").tobytes()
    counts = {"overruns": 0, "underruns": 0, "mic_samples": 0,
              "mic_samples_due": round(seconds * mic.rate)}
    stop = threading.Event()

    def play() -> None:
        while not stop.is_set():
            if spk.write(tone) < 0:
                counts["underruns"] += 1

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the parent has set the quota
    player = threading.Thread(target=play, daemon=True)
    player.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n, _ = cap.read()
        if n < 0:
            counts["overruns"] += 1
        elif n:
            counts["mic_samples"] += n
    stop.set()
    player.join(timeout=1)
    return counts


def floor(rig_mod: Any, tmp: Path, pct: float | None) -> dict[str, Any]:
    (tmp / "pulse").mkdir()
    rig = rig_mod.PulseRig(tmp / "pulse")
    rig.start()
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor", str(FLOOR_S)],
                            cwd=ROOT, env=rig.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    quota = None
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.5)  # the mic stream starts flowing
        if pct is not None:
            quota = Quota(pct, proc.pid)
        c0, w0 = cpu_s(proc.pid), time.monotonic()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(FLOOR_S - 0.5)
        used = 100 * (cpu_s(proc.pid) - c0) / (time.monotonic() - w0)
        r = json.loads(proc.stdout.readline())
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rig.stop()
        if quota is not None:
            quota.remove()
    return {"quota_pct": pct, "cpu_pct": round(used, 2), **r,
            "clean": r["overruns"] == 0 and r["underruns"] == 0
            and r["mic_samples"] >= 0.95 * r["mic_samples_due"]}


if __name__ == "__main__":
    print(json.dumps(_floor_child(float(sys.argv[1]))))
