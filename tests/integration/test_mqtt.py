"""A speaker on a real Mosquitto: discovery, commands both ways, bad payloads, TLS with a
password, and a broker outage in the middle of a conversation.

The daemon is the real one (recorded microphone, WAV speaker, the bundled reference
server for its link); the broker is Debian's mosquitto started on a free loopback port
with a generated config (mqtt_rig.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import pytest
from live import DATA, make_config, run_daemon, wait_for
from mqtt_rig import PASSWORD, Broker, Recorder, needs_mosquitto

from pivox import __version__
from pivox.reference.server import ReferenceServer

pytestmark = needs_mosquitto
QUIET_MIC = Path(__file__).parents[1] / "fixtures" / "wake_negative_london.wav"
BASE = "pivox/kitchen"


def state(rec: Recorder, node: str = "kitchen") -> dict[str, Any]:
    raw = rec.last(f"pivox/{node}/state")
    return json.loads(raw) if raw else {}


def replies(rec: Recorder, node: str = "kitchen") -> list[dict[str, Any]]:
    return [json.loads(p) for _, p, _ in rec.messages.get(f"pivox/{node}/reply", [])]


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def tls_broker(tmp_path: Path):
    b = Broker(tmp_path / "tls-broker", tls=True)
    yield b
    b.stop()


def test_discovery_commands_and_bad_payloads(broker: Broker, tmp_path: Path) -> None:
    async def main() -> dict[str, Any]:
        server = ReferenceServer()
        await server.start()
        cfg = make_config(tmp_path, server.url, mic=QUIET_MIC, extra=broker.toml("kitchen"))
        seen: dict[str, Any] = {}
        async with Recorder(broker) as rec:
            async def during(run: Any) -> None:
                d = run.daemon
                assert await wait_for(lambda: rec.last(f"{BASE}/availability") == b"online", 10)
                assert await wait_for(lambda: state(rec).get("state") == "idle", 10)
                seen["configs"] = {t: json.loads(m[-1][1]) for t, m in rec.messages.items()
                                   if t.startswith("homeassistant/") and t.endswith("/config")}
                async with Recorder(broker, ("homeassistant/#", "pivox/#")) as late:
                    await wait_for(lambda: len(late.messages) >= 16, 5)
                    seen["retained"] = sorted(t for t, m in late.messages.items() if m[0][2])
                await rec.publish(f"{BASE}/cmd/mute", "ON")
                seen["muted"] = await wait_for(lambda: d.m.state.value == "muted", 5)
                seen["muted_topic"] = await wait_for(lambda: state(rec).get("muted") == "ON", 5)
                await rec.publish(f"{BASE}/cmd/mute", "OFF")
                seen["unmuted"] = await wait_for(lambda: state(rec).get("muted") == "OFF", 5)
                await rec.publish(f"{BASE}/cmd/volume", "35")
                seen["volume"] = await wait_for(lambda: state(rec).get("volume") == 35, 5)
                seen["player_volume"] = d.player.volume
                await rec.publish(f"{BASE}/cmd/talk", "PRESS")
                seen["talk"] = await wait_for(lambda: state(rec).get("state") == "listening", 5)
                await rec.publish(f"{BASE}/cmd/stop", "PRESS")
                seen["stop"] = await wait_for(lambda: state(rec).get("state") == "idle", 5)
                bad = [("volume", b"loud"), ("volume", b"1e999"), ("volume", b"-3"),
                       ("mute", b"MAYBE"), ("nope", b"x"), ("talk", b"\xff\xfe"),
                       ("mute/deeper", b"ON"), ("volume", b"5" * 2000), ("announce", b"")]
                before = len(replies(rec))
                for name, payload in bad:
                    await rec.publish(f"{BASE}/cmd/{name}", payload)
                await rec.publish(f"{BASE}/cmd/announce", "dinner is ready")
                await wait_for(lambda: len(replies(rec)) >= before + len(bad) + 1, 5)
                seen["bad_replies"] = replies(rec)[before:]
                seen["state_after_bad"] = d.m.state.value
                configs = sum(len(m) for t, m in rec.messages.items() if t.endswith("/config"))
                await rec.publish("homeassistant/status", "online")
                seen["rediscovered"] = await wait_for(lambda: sum(
                    len(m) for t, m in rec.messages.items() if t.endswith("/config"))
                    >= configs + len(seen["configs"]), 5)
                seen["status"] = d.status()["mqtt"]

            try:
                await run_daemon(cfg, lambda r: "status" in seen, timeout=60, during=during)
            finally:
                await server.stop()
            await wait_for(lambda: rec.last(f"{BASE}/availability") == b"offline", 5)
            seen["after_stop"] = rec.last(f"{BASE}/availability")
        return seen

    seen = asyncio.run(main())
    configs = seen["configs"]
    assert len(configs) == 14
    # what a Home Assistant that starts later finds: every config, availability, state
    assert seen["retained"] == sorted([*configs, f"{BASE}/availability", f"{BASE}/state"])
    assert {c["device"]["sw_version"] for c in configs.values()} == {__version__}
    assert {c["device"]["identifiers"][0] for c in configs.values()} == {"kitchen"}
    assert seen["muted"] and seen["muted_topic"] and seen["unmuted"]
    assert seen["volume"] and seen["player_volume"] == pytest.approx(0.35)
    assert seen["talk"] and seen["stop"]
    bad = seen["bad_replies"]
    assert [r["ok"] for r in bad] == [False] * 10, bad
    assert all(isinstance(r["error"], str) and r["error"] for r in bad)
    assert "later feature" in bad[-1]["error"]
    assert seen["state_after_bad"] == "idle"
    assert seen["rediscovered"]
    st = seen["status"]
    assert st["connected"] and st["rejected"] == 10 and st["commands"] == 5
    assert seen["after_stop"] == b"offline"


def test_tls_and_password(tls_broker: Broker, tmp_path: Path,
                          caplog: pytest.LogCaptureFixture) -> None:
    tls_broker.start()
    caplog.set_level(logging.DEBUG)

    async def main() -> dict[str, Any]:
        cfg = make_config(tmp_path, "ws://127.0.0.1:9/x", mic=QUIET_MIC,
                          extra=tls_broker.toml("hall"))
        seen: dict[str, Any] = {}
        async with Recorder(tls_broker) as rec:
            async def during(run: Any) -> None:
                seen["online"] = await wait_for(
                    lambda: rec.last("pivox/hall/availability") == b"online", 15)
                seen["state"] = await wait_for(lambda: bool(state(rec, "hall")), 5)
                seen["status"] = run.daemon.status()["mqtt"]

            await run_daemon(cfg, lambda r: "status" in seen, timeout=30, during=during)
        # the same speaker with a wrong password: refused, retried, and nothing leaks
        wrong = make_config(tmp_path, "ws://127.0.0.1:9/x", mic=QUIET_MIC,
                            extra=tls_broker.toml("hall"))
        (tls_broker.dir / "speaker.pass").write_text("wrong-password-123\n")
        run = await run_daemon(wrong, lambda r: bool(r.daemon.mqtt and
                                                      r.daemon.mqtt.snapshot().last_error),
                               timeout=15)
        seen["wrong"] = run.final_status["mqtt"]
        return seen

    seen = asyncio.run(main())
    assert seen["online"] and seen["state"], tls_broker.log()[-2000:]
    assert seen["status"]["connected"] and seen["status"]["broker"].endswith(
        f":{tls_broker.port}")
    assert not seen["wrong"]["connected"] and seen["wrong"]["last_error"]
    assert "authori" in seen["wrong"]["last_error"].lower(), seen["wrong"]
    assert PASSWORD not in caplog.text and "wrong-password-123" not in caplog.text
    assert PASSWORD not in json.dumps(seen)


async def converse(tmp: Path, broker: Broker | None) -> dict[str, Any]:
    """One conversation on the demo recording; with `broker`, the broker is stopped once
    the speaker listens and started again 3 s later."""
    server = ReferenceServer()
    await server.start()
    tmp.mkdir()
    extra = broker.toml("den") if broker else "[audio.echo]\nenabled = false\n"
    cfg = make_config(tmp, server.url, mic=DATA / "demo_mic.wav", extra=extra)
    seen: dict[str, Any] = {"states": []}

    def observe(kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            seen["states"].append((data["state"], data["t"]))

    async def outage(run: Any, rec: Recorder) -> None:
        d = run.daemon
        assert await wait_for(lambda: d.m.state.value == "listening", 10)
        broker.stop()
        seen["stopped_at"] = time.monotonic()
        seen["disconnected"] = await wait_for(lambda: not d.mqtt.snapshot().connected, 5)
        await asyncio.sleep(3.0)
        broker.start()
        t = seen["restarted_at"] = time.monotonic()
        seen["back"] = await wait_for(lambda: d.mqtt.snapshot().connected, 40)
        seen["back_at"] = time.monotonic()
        seen["republished"] = await wait_for(
            lambda: rec.count("homeassistant/", since=t) >= 14
            and rec.count("pivox/den/state", since=t) >= 1
            and rec.last("pivox/den/availability") == b"online", 10)
        seen["republished_at"] = time.monotonic()

    async def during(run: Any) -> None:
        d = run.daemon
        d.observers.append(observe)
        if broker is not None:
            assert await wait_for(lambda: d.mqtt is not None and d.mqtt.snapshot().connected,
                                  10)
            async with Recorder(broker) as rec:
                await outage(run, rec)
        await wait_for(lambda: "speaking" in run.states and d.m.state.value == "idle", 30)
        seen["status"] = d.status()
        seen["reply_samples"] = d.player.snapshot().reply_samples

    try:
        await run_daemon(cfg, lambda r: "status" in seen, timeout=70, during=during)
    finally:
        await server.stop()
    times = dict(reversed(seen["states"]))  # the first time each state was entered
    seen["reply_after_s"] = times["speaking"] - times["listening"]
    seen["names"] = [name for name, _ in seen["states"]]
    return seen


def test_broker_outage_during_a_conversation(broker: Broker, tmp_path: Path) -> None:
    """The broker goes away while the speaker listens and answers: the conversation runs
    as it does with no MQTT at all, and the speaker is back on the broker soon after."""
    base = asyncio.run(converse(tmp_path / "base", None))
    seen = asyncio.run(converse(tmp_path / "outage", broker))
    st, bst = seen["status"], base["status"]
    print(f"\nbroker outage: down {seen['restarted_at'] - seen['stopped_at']:.1f} s; "
          f"speaker connected {seen['back_at'] - seen['restarted_at']:.2f} s after the "
          f"broker returned, everything republished by "
          f"{seen['republished_at'] - seen['restarted_at']:.2f} s; reply after "
          f"{seen['reply_after_s']:.2f} s (no MQTT: {base['reply_after_s']:.2f} s), "
          f"{seen['reply_samples']} reply samples (no MQTT: {base['reply_samples']}), "
          f"underruns {st['audio']['underruns']} (no MQTT: {bst['audio']['underruns']}), "
          f"loop lag {st['health']['loop_lag_ms']} ms; mqtt {st['mqtt']}")
    assert seen["disconnected"] and seen["back"] and seen["republished"]
    assert seen["names"] == base["names"]
    assert seen["reply_samples"] == base["reply_samples"] > 0
    assert st["audio"]["underruns"] == bst["audio"]["underruns"]
    assert st["audio"]["overruns"] == 0 and st["audio"]["dropped_frames"] == 0
    assert abs(seen["reply_after_s"] - base["reply_after_s"]) < 0.5
    assert st["health"]["healthy"] and not st["health"]["restarts"]
    assert st["link"]["connects"] == 1 and not st["link"]["last_error"]
    assert st["mqtt"]["reconnects"] == 1


def test_a_burst_of_random_messages(broker: Broker, tmp_path: Path) -> None:
    """Random topics under cmd/ and random payloads, as fast as the broker takes them: every
    one is answered and the speaker stays idle and connected."""
    rng = random.Random(17)
    names = ["mute", "volume", "talk", "stop", "status", "announce", "x", "", "mute/x"]

    def payload() -> bytes:
        kind = rng.randrange(4)
        if kind == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        if kind == 1:
            return str(rng.choice([rng.uniform(-1e6, 1e6), "nan", "inf", "-0", ""])).encode()
        if kind == 2:
            return rng.choice([b"ON", b"OFF", b"TOGGLE", b"PRESS", b"on", b" 50 "])
        return json.dumps({"cmd": rng.choice(names)}).encode()

    async def main() -> dict[str, Any]:
        cfg = make_config(tmp_path, "ws://127.0.0.1:9/x", mic=QUIET_MIC,
                          extra=broker.toml("attic"))
        seen: dict[str, Any] = {}
        async with Recorder(broker, ("pivox/attic/reply",)) as rec:
            async def during(run: Any) -> None:
                d = run.daemon
                assert await wait_for(lambda: d.mqtt is not None and d.mqtt.snapshot().connected,
                                      10)
                sent = 0
                for _ in range(300):
                    name = rng.choice(names)
                    if name in ("talk",):
                        continue  # a conversation would outlast the burst
                    await rec.publish(f"pivox/attic/cmd/{name}".rstrip("/"), payload())
                    sent += 1
                await rec.publish("pivox/attic/cmd/mute", "OFF")
                seen["answered"] = await wait_for(lambda: len(replies(rec, "attic")) >= sent, 20)
                seen["sent"] = sent
                seen["status"] = d.status()

            await run_daemon(cfg, lambda r: "status" in seen, timeout=60, during=during)
        seen["replies"] = replies(rec, "attic")
        return seen

    seen = asyncio.run(main())
    assert seen["answered"], (len(seen["replies"]), seen["sent"])
    assert all(isinstance(r["ok"], bool) for r in seen["replies"])
    st = seen["status"]
    assert st["mqtt"]["connected"] and st["health"]["healthy"]
    assert st["state"] in ("offline", "idle", "muted")
