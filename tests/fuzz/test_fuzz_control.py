"""Fuzzing the control socket's request handling: any line in, one JSON reply out.

`ControlServer.answer` is what the socket runs for every line it reads, in front of the
real `Daemon.command`. Here that daemon is running (recorded microphone, no server: it
goes offline and keeps retrying) so random commands also drive the real state machine.
Lines are random bytes, random JSON, and requests built from the real commands with
arguments of every type, at most MAX_LINE bytes as the socket allows. The property: a
dict whose "ok" is a bool, that serialises to JSON, with an "error" text when not ok;
never an exception (an exception drops the client's connection without a reply).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_thread import DaemonThread
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pivox.control import MAX_LINE, ControlServer

FUZZ = settings(max_examples=500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
COMMANDS = ("status", "mute", "unmute", "talk", "toggle_mute", "volume", "volume_step")
# Known but not fuzzed: "announce" synthesises speech in a worker thread (slow, and it
# shares its request handling with the commands above).
KNOWN = (*COMMANDS, "announce")


class LiveDaemon(DaemonThread):
    """The daemon, and its control socket's request handling in front of it."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.server = ControlServer(str(tmp / "fuzz.sock"), self.daemon.command)

    def answer(self, line: bytes) -> dict[str, Any]:
        return self.on_loop(lambda: self.server.answer(line))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    rig = LiveDaemon(tmp_path_factory.mktemp("fuzz-control"))
    rig.start()
    yield rig
    rig.stop()


def check(reply: Any) -> None:
    assert isinstance(reply, dict), reply
    assert isinstance(reply.get("ok"), bool), reply
    json.dumps(reply)  # the socket writes it as one JSON line
    if not reply["ok"]:
        assert isinstance(reply.get("error"), str) and reply["error"], reply


# ------------------------------------------------------------------ strategies

text = st.text(st.characters(exclude_categories=()), max_size=30)
numbers = st.one_of(st.integers(), st.integers(-(10**400), 10**400), st.floats(),
                    st.sampled_from((math.inf, -math.inf, math.nan, 0.5, 1.0, 0.0, -0.0)))
scalars = st.one_of(st.none(), st.booleans(), numbers, text,
                    st.sampled_from(("0.5", "nan", "inf", "-1", "1e999", "", " 0.3 ")))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=10,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request shaped like a real one: a known command (mostly), arguments of any type."""
    req: dict[str, Any] = draw(st.dictionaries(text, json_values, max_size=3))
    req["cmd"] = draw(st.one_of(st.sampled_from(COMMANDS), json_values))
    for arg in ("level", "step"):
        if draw(st.booleans()):
            req[arg] = draw(json_values)
    if req["cmd"] in KNOWN and req["cmd"] not in COMMANDS:
        req["cmd"] = "status"
    return req


def line_of(obj: Any, ending: bytes) -> bytes:
    return json.dumps(obj).encode() + ending


def fits(line: bytes) -> bool:
    return len(line) < MAX_LINE  # the socket refuses longer lines before answer() sees them


endings = st.sampled_from((b"\n", b"", b"\r\n", b" \n"))


# ------------------------------------------------------------------ properties


@FUZZ
@given(st.binary(max_size=300))
@example(b"\xff\xfe\n")
@example(b"\n")
@example(b"")
def test_random_bytes_get_a_reply(live: LiveDaemon, line: bytes) -> None:
    check(live.answer(line))


@FUZZ
@given(json_values, endings)
def test_any_json_gets_a_reply(live: LiveDaemon, value: Any, ending: bytes) -> None:
    line = line_of(value, ending)
    if fits(line):
        reply = live.answer(line)
        check(reply)
        if not isinstance(value, dict) or "cmd" not in value:
            assert reply["ok"] is False


@settings(FUZZ, max_examples=700)
@given(requests(), endings)
@example({"cmd": "volume", "level": 10**400}, b"\n")
@example({"cmd": "volume", "level": "1e999"}, b"\n")
@example({"cmd": "volume", "level": math.nan}, b"\n")
@example({"cmd": "volume", "level": True}, b"\n")
def test_every_command_with_any_arguments_gets_a_reply(live: LiveDaemon, req: dict[str, Any],
                                                       ending: bytes) -> None:
    line = line_of(req, ending)
    if not fits(line):
        return
    reply = live.answer(line)
    check(reply)
    if req["cmd"] not in KNOWN:
        assert reply["ok"] is False
    elif req["cmd"] == "status":
        assert reply["ok"] is True and isinstance(reply.get("state"), str)


@settings(FUZZ, max_examples=200)
@given(st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=20),
       st.floats(0.0, 1.0))
def test_command_sequences_keep_the_daemon_answering(live: LiveDaemon, cmds: list[str],
                                                     level: float) -> None:
    for cmd in cmds:
        check(live.answer(line_of({"cmd": cmd, "level": level, "step": level - 0.5}, b"\n")))
    status = live.answer(b'{"cmd": "status"}\n')
    assert status["ok"] is True and status["state"]
    live.answer(b'{"cmd": "unmute"}\n')


@pytest.mark.parametrize("line", [
    b"[" * (MAX_LINE - 2) + b"\n",
    b'{"cmd": "status", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n",
    b'{"cmd": "volume", "level": ' + b"9" * 400 + b"}\n",
    b'{"cmd": "volume_step", "step": -' + b"9" * 400 + b"}\n",
])
def test_lines_the_socket_can_deliver_never_raise(live: LiveDaemon, line: bytes) -> None:
    assert len(line) <= MAX_LINE
    check(live.answer(line))
