"""Shared rigs: the bundled reference server on loopback and a daemon on recorded audio.

A module of its own (not conftest) so test files in other folders never shadow it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pivox import config
from pivox.daemon import Daemon

LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
DATA = Path(str(resources.files("pivox") / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_manifest() -> dict[str, Any]:
    return json.loads((DATA / "demo_mic.json").read_text())


def make_config(tmp: Path, url: str, mic: Path | None = None, extra: str = "",
                link: str = "") -> config.Config:
    """A daemon config on recorded audio. `link` adds lines to [link]; `extra` adds tables."""
    mic = mic or DATA / "demo_mic.wav"
    text = f"""
[audio.capture]
device = "wav:{mic}"
[audio.playback]
device = "wav:{tmp / 'speaker.wav'}"
rate = 48000
[link]
url = "{url}"
{link}
[control]
socket = "{tmp / 'control.sock'}"
{extra}
"""
    path = tmp / "pivox.toml"
    path.write_text(text)
    return config.load(path)


def write_wav(path: Path, pcm: bytes | np.ndarray, rate: int = 16000) -> Path:
    """A mono s16 recording for a daemon's microphone (a WAV source)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm if isinstance(pcm, bytes) else pcm.astype("<i2").tobytes())
    return path


def read_speaker(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)


@dataclass
class Run:
    daemon: Daemon
    states: list[str] = field(default_factory=list)
    events: list[tuple[str, float]] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)  # just before it stopped

    def observe(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            self.states.append(data["state"])
        elif kind in ("event", "action"):
            self.events.append((data["name"], data["t"]))


async def wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


async def run_daemon(cfg: config.Config, until: Callable[[Run], bool], timeout: float = 25,
                     during: Callable[[Run], Any] | None = None, **kw: Any) -> Run:
    """Run a daemon until `until(run)` holds (or a timeout), then stop it cleanly."""
    daemon = Daemon(cfg, **kw)
    run = Run(daemon)
    daemon.observers.append(run.observe)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        if during is not None:
            await during(run)
        await wait_for(lambda: until(run), timeout)
        run.final_status = daemon.status()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    return run
