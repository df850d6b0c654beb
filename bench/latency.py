"""Latency through the real stack on loopback, and start-up time.

mic_to_wire: for every microphone frame streamed during a conversation, from the capture
of its last sample (the capture thread's timestamp) to its socket write.
wire_to_speaker: from the first reply frame received to the first reply sample written to
the speaker (includes the jitter buffer, which waits for 60 ms of audio by default).
ready_s: `pivox run` as a process, from spawn to READY=1 on a notify socket.
rss_mb: resident memory of the process after the conversation (daemon and server together).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pivox import config
from pivox.daemon import Daemon
from pivox.reference.server import ReferenceServer

DATA = Path(str(resources.files("pivox") / "data"))


def _config(tmp: Path, url: str) -> Path:
    path = tmp / "pivox.toml"
    path.write_text(f"""
[audio.capture]
device = "wav:{DATA / 'demo_mic.wav'}"
[audio.playback]
device = "wav:{tmp / 'speaker.wav'}"
[link]
url = "{url}"
[control]
socket = "{tmp / 'control.sock'}"
""")
    return path


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _conversation(tmp: Path) -> dict[str, Any]:
    server = ReferenceServer()
    await server.start()
    daemon = Daemon(config.load(_config(tmp, server.url)))
    first_rx: list[float] = []
    states: list[str] = []

    def observe(kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            states.append(data["state"])
            if data["state"] == "speaking" and not first_rx:
                first_rx.append(data["t"])

    daemon.observers.append(observe)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    end = time.monotonic() + 25
    while time.monotonic() < end and not ("speaking" in states and states[-1] == "idle"):
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await server.stop()
    assert daemon.session is not None and daemon.player is not None
    lat = np.array(daemon.session.mic_to_wire_ms)
    first_write = daemon.player.stats.first_reply_write
    return {
        "mic_to_wire_p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "mic_to_wire_p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "mic_to_wire_frames": len(lat),
        "wire_to_speaker_ms": round((first_write - first_rx[0]) * 1000, 1)
        if first_rx and first_write else None,
        "rss_mb": round(_rss_mb(), 1),
    }


def _ready_s(tmp: Path) -> float:
    sock_path = tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    cfg = _config(tmp, "ws://127.0.0.1:9/x")
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pivox", "run", "--config", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            msg = sock.recv(4096).decode()
            if "READY=1" in msg:
                return time.monotonic() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sock.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(_conversation(Path(tmp)))
        out["ready_s"] = round(_ready_s(Path(tmp)), 2)
    out["how"] = ("one conversation on the demo recording at real time against the "
                  "reference server on loopback (20 ms frames); ready_s from spawning "
                  "`pivox run` to READY=1")
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
