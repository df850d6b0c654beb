"""Fuzzing the MQTT command topics: any topic under cmd/, any payload, one reply, no raise.

`MqttBridge.answer` is what the adapter runs for every message on `<base>/<id>/cmd/#`
before it publishes the reply; here it sits in front of a running daemon's real
`Daemon.command` (recorded microphone, no server, so it goes offline and keeps retrying),
so random commands also drive the real state machine. The property: a dict with a bool
"ok" that serialises to JSON, with an "error" text when not ok; never an exception (one
would end the broker session and every speaker's entities would blink unavailable).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_thread import DaemonThread
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pivox.home.discovery import MAX_PAYLOAD
from pivox.home.mqtt import MqttBridge
from pivox.home.settings import MqttConfig

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NAMES = ("mute", "volume", "stop", "status", "announce")  # talk: a conversation per example
ROOT = "pivox/fuzz/cmd/"


class LiveBridge(DaemonThread):
    """The daemon, and a bridge (never connected) in front of it."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, extra="[audio.echo]\nenabled = false")
        self.bridge = MqttBridge(MqttConfig(host="127.0.0.1", client_id="fuzz"),
                                 self.daemon.status, self.daemon.command)

    def answer(self, topic: str, payload: bytes) -> dict[str, Any]:
        return self.on_loop(lambda: self.bridge.answer(topic, payload))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    rig = LiveBridge(tmp_path_factory.mktemp("fuzz-mqtt"))
    rig.start()
    yield rig
    rig.stop()


def check(reply: Any) -> None:
    assert isinstance(reply, dict), reply
    assert isinstance(reply.get("ok"), bool), reply
    json.dumps(reply)
    if not reply["ok"]:
        assert isinstance(reply.get("error"), str) and reply["error"], reply


names = st.one_of(st.sampled_from(NAMES), st.text(max_size=20),
                  st.builds(lambda a, b: f"{a}/{b}", st.sampled_from(NAMES), st.text(max_size=8)))
texts = st.one_of(
    st.sampled_from(["ON", "OFF", "TOGGLE", "PRESS", "on", " off ", "", "50", "0", "100",
                     "100.0001", "-0", "nan", "inf", "1e999", "0x10", "\uff15\uff10", "50%"]),
    st.floats().map(repr), st.integers(-10**30, 10**30).map(str), st.text(max_size=300))
payloads = st.one_of(texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.binary(max_size=300),
                     st.binary(min_size=MAX_PAYLOAD - 2, max_size=MAX_PAYLOAD + 2))


@FUZZ
@given(names, payloads)
@example("volume", b"1e999")
@example("mute", b"\xed\xa0\x80")  # a lone surrogate: not UTF-8
@example("", b"")
@example("announce", b"x" * 256)
def test_any_command_topic_and_payload_get_a_reply(live: LiveBridge, name: str,
                                                   payload: bytes) -> None:
    reply = live.answer(ROOT + name, payload)
    check(reply)
    if name not in NAMES:
        assert reply["ok"] is False


@settings(FUZZ, max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(NAMES), payloads), min_size=1, max_size=15))
def test_command_sequences_keep_the_daemon_answering(live: LiveBridge,
                                                     msgs: list[tuple[str, bytes]]) -> None:
    for name, payload in msgs:
        check(live.answer(ROOT + name, payload))
    status = live.answer(ROOT + "status", b"")
    assert status["ok"] is True and status["status"]["state"]
    live.answer(ROOT + "mute", b"OFF")
