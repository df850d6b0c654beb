"""Latency through the real stack on loopback, and start-up time.

mic_to_wire: for every microphone frame streamed during a conversation, from the capture
of its last sample (the capture thread's timestamp) to its socket write; the first frames
(the lead-in from before the wake word, sent in one burst once the link is ready) are
counted apart (mic_to_wire_burst_frames), and mic_to_wire_live_p99_ms is the rest.
wire_to_speaker: from the first reply frame received to the first reply sample written to
the speaker (includes the jitter buffer, which waits for 60 ms of audio by default).
barge_in: the user talks over the reply (full duplex); from the server sending
`interrupted` to the playback thread dropping the speaker's buffer (the HIL tests measure
the same on the recorded speaker output).
quickstart_mic_to_wire: the same figure for a client built the way Google's Live API
quickstart streams: 64 ms chunks through a 5-deep queue to a sender task.
*_first_sample: derived, not measured: the last-sample figure plus one frame (chunk).
ready_s: `pivox run` as a process, from spawn to READY=1 on a notify socket.
rss_after_one_conversation_mb: resident memory of the process after the conversation
(daemon and server together); `scripts/bench memory` gives it after many.
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
from pivox.core.formats import FRAME_MS
from pivox.daemon import Daemon
from pivox.reference.server import ReferenceServer

DATA = Path(str(resources.files("pivox") / "data"))
QUICKSTART_CHUNK_MS = 64


def _config(tmp: Path, url: str, mic: Path = DATA / "demo_mic.wav", extra: str = "") -> Path:
    path = tmp / "pivox.toml"
    path.write_text(f"""{extra}
[audio.capture]
device = "wav:{mic}"
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
    # The conversation's first frames (the lead-in before the wake word) leave in one
    # burst once the link is ready: counted on their own, then the live stream.
    late = np.flatnonzero(lat < FRAME_MS)
    burst = int(late[0]) if len(late) else len(lat)
    live = lat[burst:]
    return {
        "mic_to_wire_p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "mic_to_wire_p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "mic_to_wire_frames": len(lat),
        "mic_to_wire_burst_frames": burst,
        "mic_to_wire_live_p99_ms": round(float(np.percentile(live, 99)), 2)
        if len(live) else None,
        "wire_to_speaker_ms": round((first_write - first_rx[0]) * 1000, 1)
        if first_rx and first_write else None,
        "rss_after_one_conversation_mb": round(_rss_mb(), 1),
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


async def _barge_in(tmp: Path) -> float | None:
    """The demo question, then the question again 1.5 s into the reply."""
    from pivox.audio.wavfile import read_wav

    pcm = read_wav(DATA / "demo_mic.wav")
    manifest = json.loads((DATA / "demo_mic.json").read_text())
    again = pcm[int(manifest["speech_start_s"] * 16000) * 2 :]
    mic = tmp / "barge.wav"
    import wave

    with wave.open(str(mic), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm + bytes(16000 * 2 * 2) + again)
    server = ReferenceServer()
    await server.start()
    daemon = Daemon(config.load(_config(tmp, server.url, mic,
                                        '[conversation]\nduplex = "full"\n')))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    end = time.monotonic() + 20
    while time.monotonic() < end and not (
            daemon.player and daemon.player.stats.last_drop_at
            and server.stats.last_interrupted_at):
        await asyncio.sleep(0.02)
    stop.set()
    await task
    await server.stop()
    assert daemon.player is not None
    if daemon.player.stats.last_drop_at is None or server.stats.last_interrupted_at is None:
        return None
    return (daemon.player.stats.last_drop_at - server.stats.last_interrupted_at) * 1000


async def _quickstart(tmp: Path) -> list[float]:
    """Google's quickstart shape: 64 ms reads into asyncio.Queue(maxsize=5), one sender."""
    from websockets.asyncio.client import connect

    from pivox.audio.wavfile import WavSource
    from pivox.link.codec import b64encode

    server = ReferenceServer()
    await server.start()
    lat: list[float] = []
    queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue(maxsize=5)
    source = WavSource(DATA / "demo_mic.wav", frame_ms=QUICKSTART_CHUNK_MS)

    async def mic() -> None:
        for _ in range(70):  # 4.5 s
            chunk = await asyncio.to_thread(source.read)
            await queue.put((chunk, time.monotonic()))

    async with connect(server.url) as ws:
        await ws.send(json.dumps({"setup": {"model": "models/gemini-3.8-live"}}))
        await ws.recv()
        reader = asyncio.create_task(mic())
        while not (reader.done() and queue.empty()):
            try:
                chunk, t = await asyncio.wait_for(queue.get(), 1)
            except TimeoutError:
                continue
            await ws.send(json.dumps({"realtimeInput": {"audio": {
                "mimeType": "audio/pcm;rate=16000", "data": b64encode(chunk)}}}))
            lat.append((time.monotonic() - t) * 1000)
    await server.stop()
    return lat


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(_conversation(Path(tmp)))
        barge = asyncio.run(_barge_in(Path(tmp)))
        out["barge_in_ms"] = None if barge is None else round(barge, 1)
        quick = np.array(asyncio.run(_quickstart(Path(tmp))))
        # Derived, not measured: a frame's first sample waits one whole frame before its
        # last is captured, so the measured last-sample figure plus the frame length.
        out["mic_to_wire_first_sample_p99_ms"] = round(
            out["mic_to_wire_live_p99_ms"] + FRAME_MS, 2)
        out["quickstart_mic_to_wire_p99_ms"] = round(float(np.percentile(quick, 99)), 2)
        out["quickstart_first_sample_p99_ms"] = round(
            float(np.percentile(quick, 99)) + QUICKSTART_CHUNK_MS, 2)
        out["latency_derived"] = ["mic_to_wire_first_sample_p99_ms",
                                  "quickstart_first_sample_p99_ms"]
        out["ready_s"] = round(_ready_s(Path(tmp)), 2)
    out["how"] = ("measured: one conversation on the demo recording at real time against "
                  "the reference server on loopback (20 ms frames, up to UPLINK_MS a message, the "
                  "wait for the message included); ready_s from spawning "
                  "`pivox run` to READY=1. derived (latency_derived): *_first_sample_p99_ms "
                  f"= the measured (live) last-sample p99 + the frame length ({FRAME_MS} ms; "
                  f"{QUICKSTART_CHUNK_MS} ms for the quickstart's chunks)")
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
