"""Idle CPU of the whole daemon, against the bare wake engine reading the same microphone.

A real `pivox run` process (every thread: capture, playback, own-voice twin, the loop
with its link, LEDs, watchdog and control socket, and libpulse's own) listens for the
wake word on the PulseAudio rig (tests/hil/rig.py: real libasound through ALSA's pulse
plugin), echo canceller on, reference server reachable. Beside it, in the same run, a
bare process reads the same microphone PCM the same way (16 kHz, the daemon's default
period, blocking reads) and runs pymicro-wakeword okay_nabu on what it reads, nothing
else. Both are measured as utime + stime of the whole process (/proc/PID/stat) over the
same SECONDS, after each has settled; the ratio is what the daemon adds to listening.

The per-keyword figures are the bare engines on 30 s of noise in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.budget import ROOT, _hil, cpu_s, load

SECONDS = 120.0
SETTLE_S = 5.0
KEYWORD_AUDIO_S = 30.0
PORCUPINE_SET = ("porcupine", "computer", "jarvis", "alexa")


def _bare_child(device: str) -> None:
    """The bare engine: read the microphone, run the wake engine, nothing else."""
    import alsaaudio

    from pivox.config import CaptureConfig
    from pivox.wake import make_engine

    engine = make_engine()
    pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NORMAL, device=device,
                        rate=16000, channels=1, format=alsaaudio.PCM_FORMAT_S16_LE,
                        periodsize=16 * CaptureConfig().period_ms, periods=4)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        n, data = pcm.read()
        if n > 0:
            engine.process(data)


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


def whole_process(seconds: float) -> dict[str, Any]:
    rig_mod, daemon_cls, server_cls = _hil()
    why = rig_mod.PulseRig.available()
    if why:
        return {"idle_skipped": why}
    with tempfile.TemporaryDirectory(prefix="pivox-idle-") as tmp:
        (Path(tmp) / "pulse").mkdir()
        rig = rig_mod.PulseRig(Path(tmp) / "pulse")
        rig.start()
        server = server_cls()
        d = daemon_cls(Path(tmp), rig, server.url)
        bare = subprocess.Popen([sys.executable, "-m", "bench.idle", "--bare", rig.mic_device],
                                cwd=ROOT, env=rig.env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            end = time.monotonic() + 30
            while d.status().get("state") != "idle":
                if time.monotonic() > end or d.proc.poll() is not None:
                    raise RuntimeError(f"daemon not ready: {d.log.read_text()[-1500:]}")
                time.sleep(0.2)
            assert bare.stdout is not None
            bare.stdout.readline()
            time.sleep(SETTLE_S)  # the speaker goes to rest, the engines warm up
            before = load()
            d0, b0, t0 = cpu_s(d.proc.pid), cpu_s(bare.pid), time.monotonic()
            time.sleep(seconds)
            d1, b1, t1 = cpu_s(d.proc.pid), cpu_s(bare.pid), time.monotonic()
            st = d.status()
        finally:
            bare.kill()
            bare.wait()
            d.stop()
            server.stop()
            rig.stop()
    daemon_pct = 100 * (d1 - d0) / (t1 - t0)
    bare_pct = 100 * (b1 - b0) / (t1 - t0)
    return {
        "idle_cpu_percent": round(daemon_pct, 2),
        "bare_engine_cpu_percent": round(bare_pct, 2),
        "idle_cpu_ratio": round(daemon_pct / bare_pct, 2) if bare_pct else None,
        "idle_frames": st.get("audio", {}).get("frames"),
        "idle_load": f"{before} -> {load()}",
    }


def run(seconds: float = SECONDS) -> dict[str, Any]:
    out = whole_process(seconds)
    noise = np.random.default_rng(1).normal(0, 300, int(KEYWORD_AUDIO_S * 16000))
    out.update(_per_keyword(noise.astype("<i2").tobytes()))
    out["how"] = (
        f"`pivox run` (whole process, all threads: utime+stime from /proc) idle for "
        f"{seconds:.0f} s on the PulseAudio rig (pulse plugin, real libasound, 16 kHz "
        "mic, 48 kHz speaker at rest, echo canceller on) against a bare process reading "
        "the same mic PCM into pymicro-wakeword okay_nabu over the same seconds; "
        "idle_load: /proc/loadavg before -> after. wake_ENGINE_cpu_percent: the bare "
        f"engine with one keyword on {KEYWORD_AUDIO_S:.0f} s of 16 kHz noise; "
        "per_extra_keyword: (all shipped keywords - one) / (count - 1); porcupine only "
        "with $PICOVOICE_ACCESS_KEY set")
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare"]:
        _bare_child(sys.argv[2])
    else:
        print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS)))
