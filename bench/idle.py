"""Idle CPU: what listening for the wake word costs, against the bare wake engine.

The idle path is the daemon's own capture thread (pivox.audio.capture) reading 48 kHz,
4-channel S32_LE audio through real libasound (ALSA's file plugin, unpaced), mixing and
resampling it to 16 kHz, running the wake engine and keeping the pre-roll ring, with an
asyncio loop alive beside it (idle frames never wake it). Side by side, in the same
process, the bare engine is fed the same 16 kHz audio.
Both are CPU seconds per second of audio.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_S = 60.0
RATE, CHANNELS = 48000, 4


def _child(pcm_name: str, audio_s: float) -> dict[str, Any]:
    from pivox.audio.alsa import AlsaSource
    from pivox.audio.capture import Capture, Captured
    from pivox.audio.handoff import Handoff
    from pivox.wake.micro import MicroWakeEngine

    frames = int(audio_s * 50)

    async def idle_path() -> float:
        loop = asyncio.get_running_loop()
        out: Handoff[Captured] = Handoff(loop, maxlen=100)
        cap = Capture(lambda: AlsaSource(pcm_name, RATE, CHANNELS, "S32_LE", -1, 20, 20),
                      MicroWakeEngine(), out)
        start = time.process_time()
        cap.start()
        while cap.frames < frames:  # idle: frames stay in the pre-roll, the loop sleeps
            await asyncio.sleep(0.05)
        used = time.process_time() - start
        cap.stop()
        return used

    idle_cpu = asyncio.run(idle_path())
    engine = MicroWakeEngine()
    pcm16 = (np.random.default_rng(1).normal(0, 300, frames * 320)).astype("<i2").tobytes()
    start = time.process_time()
    for i in range(0, len(pcm16), 640):
        engine.process(pcm16[i : i + 640])
    bare_cpu = time.process_time() - start
    return {"idle_cpu_s": idle_cpu, "bare_cpu_s": bare_cpu, "audio_s": audio_s}


def run(audio_s: float = AUDIO_S) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        # Quiet room noise on four channels: the file plugin repeats it as needed.
        n = RATE * 10
        noise = np.random.default_rng(0).normal(0, 2e6, (n, CHANNELS)).astype("<i4")
        raw = Path(tmp) / "mic.raw"
        raw.write_bytes(noise.tobytes())
        rc = Path(tmp) / "asoundrc"
        rc.write_text(f'pcm.benchmic {{ type file; slave.pcm "null"; infile "{raw}"; '
                      f'file "/dev/null"; format "raw" }}\n')
        env = {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{rc}"}
        out = subprocess.run([sys.executable, "-m", "bench.idle", "--child", str(audio_s)],
                             env=env, capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    idle = r["idle_cpu_s"] / r["audio_s"] * 100
    bare = r["bare_cpu_s"] / r["audio_s"] * 100
    return {
        "idle_cpu_percent": round(idle, 3),
        "bare_engine_cpu_percent": round(bare, 3),
        "idle_cpu_ratio": round(idle / bare, 2) if bare else None,
        "how": f"{r['audio_s']:.0f} s of 48 kHz 4-channel S32_LE through libasound (file "
               "plugin) -> mix, soxr to 16 kHz, pymicro-wakeword okay_nabu, pre-roll ring; "
               "versus the bare engine on the same amount of 16 kHz audio; CPU "
               "seconds per audio second, one core",
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child("benchmic", float(sys.argv[2]))))
    else:
        print(json.dumps(run()))
