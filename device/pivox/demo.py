"""`pivox demo`: the whole voice loop on recorded audio, no Pi and no cloud.

Scenario 1: the bundled reference server on loopback; the recorded microphone says the
wake word and a question; the reply streams down and is "played" into a WAV file.
Scenario 2: the server is unreachable; the speaker still wakes, says so, keeps retrying,
and comes back by itself when the server appears. Both run the real daemon, real
websockets, real gpiozero (its MockFactory) and the real wake engine, at real time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pivox import config
from pivox.audio.wavfile import WavSource
from pivox.core import leds
from pivox.core.machine import State
from pivox.daemon import Daemon
from pivox.reference.server import ReferenceServer

LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def _data(name: str) -> Path:
    return Path(str(resources.files("pivox") / "data" / name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(out: Path, name: str, url: str, mic: Path) -> config.Config:
    text = f"""
[audio.capture]
device = "wav:{mic}"
[audio.playback]
device = "wav:{out / f'speaker-{name}.wav'}"
rate = 48000
[link]
url = "{url}"
[leds]
kind = "rgb"
pins = [17, 27, 22]
[control]
socket = "{out / f'control-{name}.sock'}"
"""
    path = out / f"demo-{name}.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path)


class Timeline:
    """Prints what happens, with milliseconds since the demo started."""

    def __init__(self, t0: float, write: Callable[[str], None]) -> None:
        self.t0 = t0
        self.colour = sys.stdout.isatty()
        self.write = write
        self.states: list[str] = []
        self.wake_at: float | None = None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        ms = (data.get("t", time.monotonic()) - self.t0) * 1000
        if kind == "state":
            state = State(data["state"])
            self.states.append(state.value)
            colours = leds.pattern(state, 0.5, 0.0, 12)
            drawn = leds.render_ansi(colours) if self.colour else \
                "#{:02x}{:02x}{:02x}".format(*colours[0])
            why = f"  ({data['reason']})" if data.get("reason") else ""
            self.write(f"  {ms:8.0f} ms  state {state.value:<10} LEDs {drawn} "
                       f"{leds.describe(state)}{why}")
        elif kind == "event" and data["name"] in ("WakeDetected", "SpeechStarted",
                                                    "SpeechEnded", "LinkUp", "LinkDown",
                                                    "Interrupted", "TurnComplete",
                                                    "PlaybackDrained"):
            if data["name"] == "WakeDetected" and self.wake_at is None:
                self.wake_at = data["t"]
            self.write(f"  {ms:8.0f} ms    event {data['name']}")
        elif kind == "action" and data["name"] in ("PlayPrompt", "OpenLink", "FlushPlayback"):
            self.write(f"  {ms:8.0f} ms    action {data['name']}")


async def _wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


async def _conversation(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    manifest = json.loads(_data("demo_mic.json").read_text(encoding="utf-8"))
    mic = _data("demo_mic.wav")
    server = ReferenceServer()
    await server.start()
    cfg = _config(out, "online", server.url, mic)
    sources: list[WavSource] = []

    def source() -> WavSource:
        sources.append(WavSource(mic, cfg.audio.frame_ms))
        return sources[-1]

    daemon = Daemon(cfg, source=source)
    timeline = Timeline(time.monotonic(), say)
    daemon.observers.append(timeline)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    say(f"Scenario 1: conversation with the reference server at {server.url}")
    done = await _wait_for(lambda: "speaking" in timeline.states
                           and timeline.states[-1] == "idle", 25)
    stop.set()
    await task
    await server.stop()
    assert daemon.player is not None and daemon.session is not None
    stats, src, link = daemon.player.stats, sources[0], daemon.session.snapshot()
    wake_ms = first_ms = None
    if timeline.wake_at is not None:
        wake_ms = (timeline.wake_at - src.wall_time(manifest["keyword_end_s"])) * 1000
    if stats.first_reply_write is not None:
        first_ms = (stats.first_reply_write - src.wall_time(manifest["speech_end_s"])) * 1000
    return {
        "completed": done,
        "states": timeline.states,
        "wake_latency_ms": None if wake_ms is None else round(wake_ms, 1),
        "first_reply_audio_ms": None if first_ms is None else round(first_ms, 1),
        "reply_audio_s": round(stats.reply_samples / daemon.player.rate, 2),
        "bytes_up": link.bytes_up,
        "bytes_down": link.bytes_down,
        "audio_dropped_ms": link.audio_dropped_ms,
        "speaker_wav": str(out / "speaker-online.wav"),
    }


async def _offline(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    port = _free_port()
    url = f"ws://127.0.0.1:{port}{LIVE_PATH}"
    cfg = _config(out, "offline", url, _data("demo_mic.wav"))
    daemon = Daemon(cfg)
    timeline = Timeline(time.monotonic(), say)
    daemon.observers.append(timeline)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    say(f"Scenario 2: nothing listens at {url}")
    played = await _wait_for(lambda: daemon.player is not None
                             and "offline" in daemon.player.stats.prompts_played, 10)
    say(f"  {(time.monotonic() - timeline.t0) * 1000:8.0f} ms    the server comes back")
    server = ReferenceServer(port=port)
    await server.start()
    # While down, the link probes the endpoint every probe_s and connects within the
    # reconnect spread of a probe that answers, whatever its backoff has grown to.
    recovered = await _wait_for(lambda: daemon.m.state is State.IDLE and daemon.m.link_up,
                                cfg.link.probe_s + cfg.link.reconnect_spread_s + 5)
    stop.set()
    await task
    await server.stop()
    return {"states": timeline.states, "offline_prompt_played": played, "recovered": recovered}


async def _demo(out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    Device.pin_factory = MockFactory(pin_class=MockPWMPin)
    online = await _conversation(out, say)
    offline = await _offline(out, say)
    states: list[str] = []
    for s in online["states"] + offline["states"]:
        if s not in states:
            states.append(s)
    ok = bool(online["completed"] and online["wake_latency_ms"] is not None
              and online["reply_audio_s"] > 1.0 and offline["offline_prompt_played"]
              and offline["recovered"])
    return {
        "ok": ok,
        "states": states,
        "wake_latency_ms": online["wake_latency_ms"],
        "first_reply_audio_ms": online["first_reply_audio_ms"],
        "reply_audio_s": online["reply_audio_s"],
        "offline_prompt_played": offline["offline_prompt_played"],
        "offline_recovered": offline["recovered"],
        "bytes_up": online["bytes_up"],
        "bytes_down": online["bytes_down"],
        "audio_dropped_ms": online["audio_dropped_ms"],
        "online_states": online["states"],
        "offline_states": offline["states"],
        "speaker_wav": online["speaker_wav"],
    }


def run_demo(json_out: bool = False, out_dir: str = "out") -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)

    started = time.monotonic()
    result = asyncio.run(_demo(out, say))
    result["demo_s"] = round(time.monotonic() - started, 1)
    say("")
    say("Measured:")
    say(f"  wake latency (end of wake word -> wake event):   {result['wake_latency_ms']} ms")
    say(f"  first reply audio (end of speech -> speaker):    {result['first_reply_audio_ms']} ms")
    say(f"  reply audio played:                              {result['reply_audio_s']} s")
    say(f"  bytes up / down:                                 {result['bytes_up']} / "
        f"{result['bytes_down']}")
    say(f"  offline prompt played / recovered by itself:     {result['offline_prompt_played']} / "
        f"{result['offline_recovered']}")
    say(f"  what the speaker played:                         {result['speaker_wav']}")
    say(f"  result: {'ok' if result['ok'] else 'FAILED'} in {result['demo_s']} s")
    if json_out:
        print(json.dumps(result, separators=(",", ":")))
    return 0 if result["ok"] else 1
