"""Resident memory of one `pivox run` process, measured: many conversations, then idle.

A fresh `pivox run` (its own process, nothing else before it) on the PulseAudio rig
(tests/hil/rig.py: real libasound through ALSA's pulse plugin) holds CONVERSATIONS
back-to-back conversations with the reference server (in this process): the wake word
and the demo question, its spoken reply, the next question once it is idle again. Then it
idles for IDLE_MINUTES. VmRSS (/proc/PID/status) is read after every conversation and
every SAMPLE_S of idle. Figures: the maximum, the value after WARM conversations (pools
and caches filled), the growth per 100 conversations after that, and the growth per hour
of idle (least-squares slope over the idle samples). Progress goes to stderr as JSON
lines, so a long run can be followed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.budget import DATA, _hil, load

CONVERSATIONS = 200
IDLE_MINUTES = 60.0
SAMPLE_S = 30.0
WARM = 5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait(d: Any, state: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.proc.poll() is not None:
            raise RuntimeError(f"daemon exited: {d.log.read_text()[-1500:]}")
        if d.status().get("state") == state:
            return
        time.sleep(0.1)
    raise TimeoutError(f"no {state} within {timeout:.0f} s")


def run(conversations: int = CONVERSATIONS, idle_minutes: float = IDLE_MINUTES
        ) -> dict[str, Any]:
    from pivox.audio.wavfile import read_wav

    rig_mod, daemon_cls, server_cls = _hil()
    why = rig_mod.PulseRig.available()
    if why:
        return {"memory_skipped": why, "how": f"skipped: {why}"}
    pcm = read_wav(DATA / "demo_mic.wav")
    load_before = load()
    started = time.monotonic()
    conv: list[float] = []
    idle: list[tuple[float, float]] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="pivox-memory-") as tmp:
        (Path(tmp) / "pulse").mkdir()
        rig = rig_mod.PulseRig(Path(tmp) / "pulse")
        rig.start()
        server = server_cls()
        d = daemon_cls(Path(tmp), rig, server.url)
        try:
            _wait(d, "idle", 30)
            first = rss_mb(d.proc.pid)
            for i in range(conversations):
                rig.feeder.say(pcm)
                try:
                    _wait(d, "speaking", 20)
                    _wait(d, "idle", 30)
                except TimeoutError:
                    failed += 1
                    _wait(d, "idle", 30)
                conv.append(rss_mb(d.proc.pid))
                if i % 10 == 9 or i == conversations - 1:
                    print(json.dumps({"conversations": i + 1, "rss_mb": conv[-1],
                                      "load": load()}), file=sys.stderr, flush=True)
            t0 = time.monotonic()
            end = t0 + idle_minutes * 60
            while True:
                idle.append((time.monotonic() - t0, rss_mb(d.proc.pid)))
                if len(idle) % 10 == 1:
                    print(json.dumps({"idle_s": round(idle[-1][0]), "rss_mb": idle[-1][1],
                                      "load": load()}), file=sys.stderr, flush=True)
                if time.monotonic() >= end:
                    break
                time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
            st = d.status()
        finally:
            d.stop()
            server.stop()
            rig.stop()
    warm = conv[min(WARM, len(conv)) - 1] if conv else first
    after = len(conv) - min(WARM, len(conv))
    if len(idle) >= 3:
        ts, rs = np.array([t for t, _ in idle]), np.array([r for _, r in idle])
        per_hour: float | None = float(np.polyfit(ts / 3600, rs, 1)[0])
    else:
        per_hour = None
    every = conv + [r for _, r in idle]
    return {
        "rss_max_mb": round(max(every), 1) if every else None,
        "rss_ready_mb": round(first, 1),
        "rss_warm_mb": round(warm, 1),
        "rss_after_conversations_mb": round(conv[-1], 1) if conv else None,
        "rss_end_mb": round(idle[-1][1], 1) if idle else None,
        "rss_growth_mb_per_100_conversations": round((conv[-1] - warm) / after * 100, 2)
        if after > 0 else None,
        "rss_idle_growth_mb_per_hour": None if per_hour is None else round(per_hour, 2),
        "memory_conversations": len(conv),
        "memory_conversations_failed": failed,
        "memory_idle_minutes": round(idle[-1][0] / 60, 1) if idle else 0.0,
        "memory_wake_detections": st.get("wake", {}).get("detections"),
        "memory_load": f"{load_before} -> {load()}",
        "memory_wall_s": round(time.monotonic() - started),
        "how": f"a fresh `pivox run` alone in its process on the PulseAudio rig, "
               f"{len(conv)} conversations back to back (wake word, demo question, spoken "
               f"reply), then {idle_minutes:g} min idle; VmRSS after each conversation and "
               f"every {SAMPLE_S:.0f} s of idle; warm = after {WARM} conversations; idle "
               "growth = least-squares slope; memory_load: /proc/loadavg before -> after",
    }


if __name__ == "__main__":
    print(json.dumps(run()))
