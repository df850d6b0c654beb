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
KEYWORD_AUDIO_S = 30.0
PORCUPINE_SET = ("porcupine", "computer", "jarvis", "alexa")
RATE, CHANNELS = 48000, 4


def _child(pcm_name: str, audio_s: float) -> dict[str, Any]:
    from pivox.audio.alsa import AlsaSource
    from pivox.audio.capture import Capture, Captured
    from pivox.audio.handoff import Handoff
    from pivox.wake import make_engine

    frames = int(audio_s * 50)

    async def idle_path() -> float:
        loop = asyncio.get_running_loop()
        out: Handoff[Captured] = Handoff(loop, maxlen=100)
        cap = Capture(lambda: AlsaSource(pcm_name, RATE, CHANNELS, "S32_LE", -1, 20, 20),
                      make_engine(), out)
        start = time.process_time()
        cap.start()
        while cap.frames < frames:  # idle: frames stay in the pre-roll, the loop sleeps
            await asyncio.sleep(0.05)
        used = time.process_time() - start
        cap.stop()
        return used

    idle_cpu = asyncio.run(idle_path())
    pcm16 = (np.random.default_rng(1).normal(0, 300, frames * 320)).astype("<i2").tobytes()
    bare_cpu = _engine_cpu(make_engine(), pcm16)
    return {"idle_cpu_s": idle_cpu, "bare_cpu_s": bare_cpu, "audio_s": audio_s,
            **_per_keyword(pcm16[: int(KEYWORD_AUDIO_S * 32000)])}


def _engine_cpu(engine: Any, pcm16: bytes) -> float:
    start = time.process_time()
    for i in range(0, len(pcm16), 640):
        engine.process(pcm16[i : i + 640])
    return time.process_time() - start


def _per_keyword(pcm16: bytes) -> dict[str, Any]:
    """Each engine with one keyword and with all it ships: the front end is shared, so
    the first keyword costs far more than each further one."""
    from pivox.core.wakeword import BUILTIN
    from pivox.wake import WakeSetupError, make_engine

    audio_s = len(pcm16) / 32000
    out: dict[str, Any] = {}
    for engine in ("micro", "openwakeword", "porcupine"):
        kws = [k for k in BUILTIN[engine] if engine != "porcupine" or k in PORCUPINE_SET]
        key = os.environ.get("PICOVOICE_ACCESS_KEY", "")
        try:
            one = _engine_cpu(make_engine(engine, kws[:1], access_key=key), pcm16)
            every = _engine_cpu(make_engine(engine, kws, access_key=key), pcm16)
        except WakeSetupError as exc:
            out[f"wake_{engine}_cpu_percent"] = None
            out[f"wake_{engine}_note"] = str(exc)
            continue
        out[f"wake_{engine}_cpu_percent"] = round(100 * one / audio_s, 3)
        out[f"wake_{engine}_per_extra_keyword_cpu_percent"] = round(
            100 * (every - one) / audio_s / (len(kws) - 1), 3)
    return out


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
                             env=env, capture_output=True, text=True, check=False,
                             cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise RuntimeError(f"idle bench child failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    idle = r["idle_cpu_s"] / r["audio_s"] * 100
    bare = r["bare_cpu_s"] / r["audio_s"] * 100
    per_kw = {k: v for k, v in r.items() if k.startswith("wake_")}
    return {
        **per_kw,
        "idle_cpu_percent": round(idle, 3),
        "bare_engine_cpu_percent": round(bare, 3),
        "idle_cpu_ratio": round(idle / bare, 2) if bare else None,
        "how": f"{r['audio_s']:.0f} s of 48 kHz 4-channel S32_LE through libasound (file "
               "plugin) -> mix, soxr to 16 kHz, pymicro-wakeword okay_nabu, pre-roll ring; "
               "versus the bare engine on the same amount of 16 kHz audio; CPU "
               "seconds per audio second, one core. wake_ENGINE_cpu_percent: the bare engine "
               f"with one keyword on {KEYWORD_AUDIO_S:.0f} s of 16 kHz audio; "
               "per_extra_keyword: (all shipped keywords - one) / (count - 1); porcupine "
               "only with $PICOVOICE_ACCESS_KEY set (it needs Picovoice's activation)",
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child("benchmic", float(sys.argv[2]))))
    else:
        print(json.dumps(run()))
