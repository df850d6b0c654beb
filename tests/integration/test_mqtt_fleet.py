"""Twenty speakers on one broker: every one listed by `pivox fleet --json`, every one
controllable over MQTT, and the messages each one sends, idle and in a conversation.

Each speaker is a real `pivox run` process (a recorded microphone: silence, then the wake
word and a question; a WAV speaker; no echo canceller) linked to one bundled reference
server. Processes, not
daemons in one interpreter: twenty daemons' capture and playback threads in one process
would share one GIL, which no real fleet does. Measured here: about 3 % of a core per
idle speaker, so twenty fit on this machine's two cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from live import DATA, wait_for, write_wav
from mqtt_rig import Broker, Recorder, needs_mosquitto

from pivox import __version__
from pivox.reference.server import ReferenceServer

pytestmark = needs_mosquitto
SPEAKERS = 20
QUESTION_AFTER_S = 75.0  # each speaker hears its wake word this long after it starts
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def speaker_config(d: Path, url: str, broker: Broker, node: str, mic: Path) -> Path:
    d.mkdir()
    path = d / "pivox.toml"
    path.write_text(f"""
[audio.capture]
device = "wav:{mic}"
[audio.playback]
device = "wav:{d / 'speaker.wav'}"
[link]
url = "{url}"
[control]
socket = "{d / 'control.sock'}"
[log]
level = "warning"
{broker.toml(node)}""")
    return path


def fleet_json(broker: Broker) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "pivox", "fleet", "--json", "--host",
                          "127.0.0.1", "--port", str(broker.port)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def per_speaker(rec: Recorder, nodes: list[str], since: float, until: float) -> list[int]:
    return [sum(1 for t, msgs in rec.messages.items() if t.startswith(f"pivox/{n}/")
                and not t.endswith("/cmd") and "/cmd/" not in t
                for at, _, _ in msgs if since <= at < until) for n in nodes]


def delayed_question(path: Path, delay_s: float) -> Path:
    """The demo recording (wake word, then a question) after `delay_s` of silence."""
    with wave.open(str(DATA / "demo_mic.wav")) as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    return write_wav(path, bytes(int(delay_s * rate) * 2) + pcm, rate)


def conversation_messages(rec: Recorder, node: str) -> tuple[int, float]:
    """Messages from a speaker between its first non-idle state and its return to idle."""
    times = [(at, json.loads(p).get("state")) for at, p, _ in rec.messages[f"pivox/{node}/state"]]
    begin = next(at for at, st in times if st not in ("idle", "booting"))
    end = next(at for at, st in times if at > begin and st == "idle")
    return per_speaker(rec, [node], begin, end + 0.001)[0], end - begin


def test_twenty_speakers_on_one_broker(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker")
    broker.start()
    nodes = [f"speaker{i:02d}" for i in range(SPEAKERS)]
    mic = delayed_question(tmp_path / "mic.wav", QUESTION_AFTER_S)
    procs: list[subprocess.Popen[bytes]] = []

    async def main() -> dict[str, Any]:
        server = ReferenceServer()
        await server.start()
        seen: dict[str, Any] = {}
        try:
            async with Recorder(broker, ("pivox/#",)) as rec:
                def states() -> dict[str, dict[str, Any]]:
                    return {n: json.loads(rec.last(f"pivox/{n}/state") or b"{}") for n in nodes}

                t0 = time.monotonic()
                for n in nodes:
                    cfg = speaker_config(tmp_path / n, server.url, broker, n, mic)
                    with open(tmp_path / n / "log", "wb") as log:
                        procs.append(subprocess.Popen(
                            [sys.executable, "-m", "pivox", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=log))
                assert await wait_for(lambda: all(
                    s.get("state") == "idle" for s in states().values()), 60), states()
                seen["start_s"] = time.monotonic() - t0
                await asyncio.sleep(2.0)  # let the start-up burst pass
                cpu0 = [cpu_s(p.pid) for p in procs]
                t1 = time.monotonic()
                await asyncio.sleep(t0 + QUESTION_AFTER_S - 2.0 - t1)
                t2 = time.monotonic()
                seen["idle_s"] = t2 - t1
                seen["idle"] = per_speaker(rec, nodes, t1, t2)
                seen["cpu"] = [(cpu_s(p.pid) - c) / (t2 - t1) for p, c in zip(procs, cpu0,
                                                                              strict=True)]
                # every speaker hears its wake word and question, and answers
                seen["answered"] = await wait_for(lambda: all(
                    any(json.loads(m).get("state") == "speaking"
                        for _, m, _ in rec.messages[f"pivox/{n}/state"]) for n in nodes)
                    and all(s.get("state") == "idle" for s in states().values()), 60)
                seen["conversation"] = [conversation_messages(rec, n) for n in nodes]
                seen["listing"] = await asyncio.to_thread(fleet_json, broker)

                # each one controllable: its own volume, then mute and unmute
                for i, n in enumerate(nodes):
                    await rec.publish(f"pivox/{n}/cmd/volume", str(10 + i))
                    await rec.publish(f"pivox/{n}/cmd/mute", "ON")
                seen["controlled"] = await wait_for(lambda: all(
                    s.get("volume") == 10 + i and s.get("muted") == "ON"
                    for i, s in enumerate(states().values())), 20)
                for n in nodes:
                    await rec.publish(f"pivox/{n}/cmd/mute", "OFF")
                seen["unmuted"] = await wait_for(lambda: all(
                    s.get("state") == "idle" for s in states().values()), 20)

                # one speaker goes away: the fleet lists it offline
                procs[0].send_signal(signal.SIGTERM)
                procs[0].wait(20)
                seen["gone"] = await wait_for(
                    lambda: rec.last(f"pivox/{nodes[0]}/availability") == b"offline", 10)
                seen["after"] = await asyncio.to_thread(fleet_json, broker)
        finally:
            await server.stop()
        return seen

    try:
        seen = asyncio.run(main())
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()

    listing = seen["listing"]
    artifact = Path(os.environ.get("PIVOX_FLEET_JSON", tmp_path / "fleet.json"))  # to keep it
    artifact.write_text(json.dumps(listing, indent=2))
    idle = [n / seen["idle_s"] for n in seen["idle"]]
    talk = [n / s for n, s in seen["conversation"]]
    count = [n for n, _ in seen["conversation"]]
    print(f"\n{SPEAKERS} speakers ready in {seen['start_s']:.1f} s; per speaker: idle "
          f"{min(idle):.3f}-{max(idle):.3f} msg/s over {seen['idle_s']:.0f} s; a conversation "
          f"{min(count)}-{max(count)} messages in "
          f"{min(s for _, s in seen['conversation']):.1f}-"
          f"{max(s for _, s in seen['conversation']):.1f} s "
          f"({min(talk):.2f}-{max(talk):.2f} msg/s); CPU per idle speaker "
          f"{100 * sum(seen['cpu']) / SPEAKERS:.1f} % of a core; listing in {artifact}")
    print(json.dumps({**listing, "speakers": [*listing["speakers"][:2], "..."]}, indent=2))
    speakers = listing["speakers"]
    assert [s["id"] for s in speakers] == nodes
    assert all(s["online"] and s["state"] == "idle" and s["version"] == __version__
               and s["link"] == "connected" and s["last_seen"] for s in speakers), speakers
    assert seen["answered"] and seen["controlled"] and seen["unmuted"]
    assert max(idle) < 0.5, idle
    assert seen["gone"]
    after = {s["id"]: s for s in seen["after"]["speakers"]}
    assert len(after) == SPEAKERS and after[nodes[0]]["online"] is False
    assert all(after[n]["online"] for n in nodes[1:])


@pytest.mark.parametrize("argv", [["--host", "192.0.2.1"], ["--host", "10.1.1.1", "--port",
                                                             "1883"]])
def test_fleet_refuses_plain_mqtt_off_loopback(argv: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "pivox", "fleet", *argv],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "allow_plain" in out.stderr, out.stderr
