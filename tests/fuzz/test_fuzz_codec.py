"""Fuzzing the Live decoder: whatever the server sends, `LiveCodec.receive` returns events.

Structured strategies build server messages from the protocol's own vocabulary (every key
in camelCase or snake_case, unknown fields at every level, both base64 alphabets with or
without padding, unicode everywhere), then break them: wrong types in every field, random
nesting, truncation, huge and non-finite numbers, undecodable audio. The properties:

- nothing escapes `receive`, and every event it returns is well typed for the daemon
  (a malformed frame that escaped here, or an event of the wrong shape, ends the link task);
- a frame that is not a JSON object, or carries undecodable audio, yields a FrameError;
- valid audio parts decode to exactly the bytes that were sent, in order;
- every other valid field becomes its event, whatever its casing and whatever else is there.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pivox.core import events as ev
from pivox.core.models import profile_for
from pivox.link import codec as lc
from pivox.link import tools

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = "gemini-3.8-live"
OUTPUT_MIME = "audio/pcm;rate=24000"
EVENT_TYPES = (
    lc.SetupComplete, ev.AudioOut, ev.Interrupted, ev.GenerationComplete, ev.TurnComplete,
    lc.GoAway, lc.SessionHandle, lc.ToolCall, lc.ToolCallCancelled, lc.Transcript, lc.Usage,
    ev.ServerBusy, lc.FrameError,
)
# Every key the decoder reads, plus a few real server fields it does not (they must pass).
KNOWN_KEYS = (
    "setupComplete", "serverContent", "modelTurn", "parts", "inlineData", "mimeType", "data",
    "text", "interrupted", "generationComplete", "turnComplete", "inputTranscription",
    "outputTranscription", "finished", "interactionStatus", "toolCall", "functionCalls", "id",
    "name", "args", "toolCallCancellation", "ids", "goAway", "timeLeft", "seconds", "nanos",
    "sessionResumptionUpdate", "newHandle", "resumable", "usageMetadata", "totalTokenCount",
    "promptTokenCount", "responseTokenCount", "groundingMetadata", "turnCompleteReason",
    "waitingForInput", "thought", "role",
)


def codec() -> lc.LiveCodec:
    return lc.LiveCodec(profile_for(MODEL)[0])


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def receive(frame: str | bytes) -> list[Any]:
    """One frame into a fresh codec; any exception fails the test with the frame shown."""
    events = codec().receive(frame)
    assert isinstance(events, list)
    for event in events:
        assert_well_typed(event)
    return events


def assert_well_typed(event: Any) -> None:
    """The shapes the daemon and the session rely on (sets, str formatting, arithmetic)."""
    assert isinstance(event, EVENT_TYPES), event
    if isinstance(event, ev.AudioOut):
        assert isinstance(event.pcm, bytes)
    elif isinstance(event, lc.GoAway):
        assert isinstance(event.time_left_s, float)
    elif isinstance(event, lc.SessionHandle):
        assert isinstance(event.handle, str) and isinstance(event.resumable, bool)
    elif isinstance(event, lc.ToolCall):
        assert isinstance(event.calls, tuple)
        for call in event.calls:
            assert isinstance(call, lc.FunctionCall)
            assert isinstance(call.id, str) and isinstance(call.name, str)
            assert isinstance(call.args, dict)
    elif isinstance(event, lc.ToolCallCancelled):
        # The daemon keeps these in a set of call ids: anything but strings breaks it.
        assert isinstance(event.ids, tuple) and all(isinstance(i, str) for i in event.ids), event
    elif isinstance(event, lc.Transcript):
        assert event.direction in ("input", "output") and isinstance(event.text, str)
        assert isinstance(event.finished, bool)
    elif isinstance(event, lc.Usage):
        assert isinstance(event.total_tokens, int)
    elif isinstance(event, ev.ServerBusy):
        assert isinstance(event.busy, bool)
    elif isinstance(event, lc.FrameError):
        assert isinstance(event.reason, str) and len(event.reason) <= 300  # one log line


def errors(events: list[Any]) -> list[lc.FrameError]:
    return [e for e in events if isinstance(e, lc.FrameError)]


def audio(events: list[Any]) -> list[bytes]:
    return [e.pcm for e in events if isinstance(e, ev.AudioOut)]


# ------------------------------------------------------------------ strategies

# Unicode that JSON can carry, lone surrogates included (json.dumps escapes them).
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
huge_ints = st.one_of(st.integers(), st.integers(min_value=2**63, max_value=10**300),
                      st.integers(min_value=-(10**300), max_value=-(2**63)))
any_floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), huge_ints, any_floats, any_text)


@st.composite
def any_key(draw: st.DrawFn) -> str:
    """A known key in either casing, or an unknown one."""
    kind = draw(st.sampled_from(("camel", "snake", "unknown")))
    if kind == "unknown":
        return draw(any_text)
    name = draw(st.sampled_from(KNOWN_KEYS))
    return snake(name) if kind == "snake" else name


json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(any_key(), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def cased(draw: st.DrawFn, obj: Any) -> Any:
    """`obj` with each key independently camelCase or snake_case (tool args stay as sent)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = snake(k) if draw(st.booleans()) else k
            out[key] = v if k in lc.OPAQUE_KEYS else draw(cased(v))
        return out
    if isinstance(obj, list):
        return [draw(cased(v)) for v in obj]
    return obj


@st.composite
def with_unknown_fields(draw: st.DrawFn, obj: Any) -> Any:
    """`obj` with unknown fields of any type added to some of its objects."""
    if isinstance(obj, dict):
        out = {k: v if lc.camel(k) in lc.OPAQUE_KEYS else draw(with_unknown_fields(v))
               for k, v in obj.items()}
        if not draw(st.booleans()):
            return out
        known = {lc.camel(k) for k in out}
        for key, value in draw(st.dictionaries(any_text, json_values, min_size=1,
                                               max_size=2)).items():
            if lc.camel(key) not in known and lc.camel(key) not in KNOWN_KEYS:
                out[key] = value
        return out
    if isinstance(obj, list):
        return [draw(with_unknown_fields(v)) for v in obj]
    return obj


@st.composite
def b64(draw: st.DrawFn, data: bytes) -> str:
    """`data` in base64 as a server might send it: either alphabet, padded or not."""
    text = (base64.urlsafe_b64encode if draw(st.booleans()) else base64.b64encode)(data)
    s = text.decode("ascii")
    if draw(st.booleans()):
        s = s.rstrip("=")
    if draw(st.booleans()):
        s = draw(st.sampled_from(("", " ", "\n", "\t", "\r\n"))) + s + draw(
            st.sampled_from(("", " ", "\n", "\t ")))
    return s


pcm_bytes = st.binary(min_size=1, max_size=600)
audio_mime = st.sampled_from((OUTPUT_MIME, "audio/pcm", "audio/pcm; rate=24000",
                              "audio/pcm;rate=024000", "audio/pcm;encoding=s16le;rate=24000"))


@st.composite
def audio_part(draw: st.DrawFn) -> tuple[dict[str, Any], bytes]:
    pcm = draw(pcm_bytes)
    return {"inlineData": {"mimeType": draw(audio_mime), "data": draw(b64(pcm))}}, pcm


other_parts = st.one_of(
    st.builds(lambda t: {"text": t}, any_text),
    st.builds(lambda t: {"text": t, "thought": True}, any_text),
    st.builds(lambda d: {"inlineData": {"mimeType": "image/png", "data": d}}, any_text),
)
json_objects = st.dictionaries(any_text, json_values, max_size=4)
durations = st.one_of(
    st.integers(0, 3600).map(lambda n: (f"{n}s", float(n))),
    st.floats(0, 3600, allow_nan=False).map(lambda x: (f"{x!r}s", float(x))),
    st.tuples(st.integers(0, 3600), st.integers(0, 999_999_999)).map(
        lambda sn: ({"seconds": sn[0], "nanos": sn[1]}, float(sn[0]) + float(sn[1]) / 1e9)),
    st.integers(0, 3600).map(lambda n: (n, float(n))),
)


@st.composite
def valid_message(draw: st.DrawFn) -> tuple[dict[str, Any], list[bytes], list[Any]]:
    """A server message of several components, the audio it carries and its other events."""
    msg: dict[str, Any] = {}
    expected: list[Any] = []
    sent_audio: list[bytes] = []
    if draw(st.booleans()):
        msg["setupComplete"] = {}
        expected.append(lc.SetupComplete())
    if draw(st.booleans()):
        content: dict[str, Any] = {}
        parts: list[Any] = []
        for _ in range(draw(st.integers(0, 4))):
            if draw(st.booleans()):
                part, pcm = draw(audio_part())
                parts.append(part)
                sent_audio.append(pcm)
            else:
                parts.append(draw(other_parts))
        if parts or draw(st.booleans()):
            content["modelTurn"] = {"parts": parts, "role": "model"}
        for key, event in (("interrupted", ev.Interrupted()),
                           ("generationComplete", ev.GenerationComplete()),
                           ("turnComplete", ev.TurnComplete())):
            flag = draw(st.sampled_from((None, True, False)))
            if flag is not None:
                content[key] = flag
                if flag:
                    expected.append(event)
        for key, direction in (("inputTranscription", "input"),
                               ("outputTranscription", "output")):
            if draw(st.booleans()):
                text, finished = draw(any_text), draw(st.booleans())
                content[key] = {"text": text, "finished": finished}
                if text or finished:
                    expected.append(lc.Transcript(direction, text, finished))
        msg["serverContent"] = content
    if draw(st.booleans()):
        calls = draw(st.lists(st.tuples(any_text, any_text, json_objects), max_size=3))
        msg["toolCall"] = {"functionCalls": [{"id": i, "name": n, "args": a}
                                             for i, n, a in calls]}
        expected.append(lc.ToolCall(tuple(lc.FunctionCall(i, n, a) for i, n, a in calls)))
    if draw(st.booleans()):
        ids = draw(st.lists(any_text, max_size=3))
        msg["toolCallCancellation"] = {"ids": ids}
        expected.append(lc.ToolCallCancelled(tuple(ids)))
    if draw(st.booleans()):
        wire, seconds = draw(durations)
        msg["goAway"] = {"timeLeft": wire}
        expected.append(lc.GoAway(seconds))
    if draw(st.booleans()):
        handle, resumable = draw(any_text), draw(st.booleans())
        msg["sessionResumptionUpdate"] = {"newHandle": handle, "resumable": resumable}
        expected.append(lc.SessionHandle(handle, resumable))
    if draw(st.booleans()):
        total = draw(st.integers(0, 2**62))
        msg["usageMetadata"] = {"promptTokenCount": 1, "totalTokenCount": total}
        expected.append(lc.Usage(total))
    if draw(st.booleans()):
        status = draw(st.sampled_from(("IN_PROGRESS", "IDLE")))
        msg["interactionStatus"] = status
        expected.append(ev.ServerBusy(status == "IN_PROGRESS"))
    msg = draw(cased(msg))
    if draw(st.booleans()):
        msg = draw(with_unknown_fields(msg))
    return msg, sent_audio, expected


def encode(msg: Any, as_bytes: bool) -> str | bytes:
    text = json.dumps(msg)
    return text.encode("utf-8", "surrogatepass") if as_bytes else text


def canonical(events: list[Any]) -> list[str]:
    return sorted(repr(e) for e in events)


# ------------------------------------------------------------------ properties


@FUZZ
@given(valid_message(), st.booleans())
def test_valid_messages_decode_exactly(built: tuple, as_bytes: bool) -> None:
    msg, sent_audio, expected = built
    events = receive(encode(msg, as_bytes))
    assert not errors(events), (msg, events)
    assert audio(events) == sent_audio
    others = [e for e in events if not isinstance(e, ev.AudioOut)]
    assert canonical(others) == canonical(expected)


@FUZZ
@given(st.lists(st.tuples(pcm_bytes, st.sampled_from((24000, 16000, 48000, 8000))),
                min_size=1, max_size=5), st.data())
def test_every_part_at_the_right_rate_decodes_and_the_others_are_errors(
        parts: list[tuple[bytes, int]], data: st.DataObject) -> None:
    wire = [{"inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": data.draw(b64(pcm))}}
            for pcm, rate in parts]
    events = receive(json.dumps({"serverContent": {"modelTurn": {"parts": wire}}}))
    assert audio(events) == [pcm for pcm, rate in parts if rate == 24000]
    assert len(errors(events)) == sum(rate != 24000 for _, rate in parts)


@st.composite
def bad_base64(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(("char", "length", "type", "padding")))
    good = base64.b64encode(draw(st.binary(min_size=4, max_size=60))).decode().rstrip("=")
    if kind == "char":  # a character outside both alphabets, inside the text
        bad = draw(st.one_of(
            st.sampled_from("!@#$%^&*.,:;?~`\"' \t\n\\|<>()[]{}"
                            "\x00\x7f\u00e9\uff41\u20ac\U0001f600"),
            st.characters(exclude_categories=("Cs",), min_codepoint=0x80)))
        at = draw(st.integers(1, len(good) - 1))
        return good[:at] + bad + good[at:]
    if kind == "length":  # one character too many: no byte boundary
        return good[: len(good) // 4 * 4] + draw(st.sampled_from("AQgw+/-_"))
    if kind == "padding":  # padding with data after it (trailing excess padding is let go)
        at = draw(st.integers(1, len(good) - 1))
        return draw(st.sampled_from((good[:at] + "==" + good[at:], "=" + good, "====")))
    return draw(st.one_of(st.none(), st.booleans(), huge_ints, any_floats,
                          st.lists(scalars, max_size=3), json_objects))


@FUZZ
@given(bad_base64(), st.lists(audio_part(), max_size=3), st.data())
@example("@@not-b64", [], None)
def test_undecodable_audio_is_a_frame_error(bad: Any, good: list, data: Any) -> None:
    parts = [p for p, _ in good]
    at = data.draw(st.integers(0, len(parts))) if data is not None else 0
    parts.insert(at, {"inlineData": {"mimeType": OUTPUT_MIME, "data": bad}})
    events = receive(json.dumps({"serverContent": {"modelTurn": {"parts": parts}}}))
    assert errors(events), (bad, events)
    assert not audio(events), "audio from a frame that could not be decoded"


@FUZZ
@given(st.one_of(st.binary(max_size=400), st.text(st.characters(), max_size=400)))
@example(b'{"serverContent": {"modelTurn": ')
@example(b"\xff\xfe\x00\x00")
@example("")
def test_anything_that_is_not_json_is_one_frame_error(frame: str | bytes) -> None:
    try:
        json.loads(frame)
    except (ValueError, RecursionError):
        assert len(errors(receive(frame))) == 1
    else:
        receive(frame)


@FUZZ
@given(json_values.filter(lambda v: not isinstance(v, dict)), st.booleans())
def test_json_that_is_not_an_object_is_one_frame_error(value: Any, as_bytes: bool) -> None:
    events = receive(encode(value, as_bytes))
    assert len(events) == 1 and isinstance(events[0], lc.FrameError)


@settings(FUZZ, max_examples=200)
@given(valid_message(), st.data())
def test_a_truncated_message_is_one_frame_error(built: tuple, data: st.DataObject) -> None:
    text = json.dumps(built[0])
    cut = data.draw(st.integers(0, len(text) - 1))
    events = receive(text[:cut])
    assert len(events) == 1 and isinstance(events[0], lc.FrameError)


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in `obj` a value can be replaced (the root excluded)."""
    out = []
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return out
    for k, v in items:
        out.append((*prefix, k))
        out.extend(paths(v, (*prefix, k)))
    return out


def replaced(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        return {k: replaced(v, rest, value) if k == head else v for k, v in obj.items()}
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(obj)]


@settings(FUZZ, max_examples=400)
@given(valid_message(), st.data())
@example(({"usageMetadata": {"totalTokenCount": 1}}, [], []), None)  # -> Infinity
@example(({"toolCallCancellation": {"ids": ["a"]}}, [], []), None)  # -> an object
def test_wrong_types_in_every_field_never_escape(built: tuple, data: Any) -> None:
    msg = built[0]
    if data is None:  # the explicit examples: the first leaf becomes its worst value
        path = paths(msg)[-1]
        value = math.inf if "usageMetadata" in msg else {"not": "an id"}
    else:
        places = paths(msg)
        if not places:
            return
        path = data.draw(st.sampled_from(places))
        value = data.draw(json_values)
    receive(json.dumps(replaced(msg, path, value)))


@FUZZ
@given(st.dictionaries(any_key(), json_values, max_size=6), st.booleans())
def test_random_objects_of_protocol_words_never_escape(msg: dict, as_bytes: bool) -> None:
    receive(encode(msg, as_bytes))


@FUZZ
@given(st.sampled_from(("toolCall", "goAway", "toolCallCancellation")),
       st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_a_control_message_that_is_not_an_object_is_a_frame_error(key: str, body: Any) -> None:
    assert errors(receive(json.dumps({key: body})))


@FUZZ
@given(st.sampled_from(("totalTokenCount", "timeLeft", "seconds")),
       st.one_of(huge_ints.map(str), any_floats.map(repr),
                 st.sampled_from(("1e999", "-1e999", "Infinity", "-Infinity", "NaN", "1" * 5000,
                                  "-" + "9" * 4400, "1e-999", "0.1e309")))
       .map(lambda s: s.replace("inf", "Infinity").replace("nan", "NaN")))
@example("totalTokenCount", "Infinity")
@example("totalTokenCount", "1e999")
@example("totalTokenCount", "NaN")
@example("totalTokenCount", "1" * 5000)
def test_huge_and_non_finite_numbers_never_escape(key: str, literal: str) -> None:
    """Number literals as written on the wire, beyond what int64 or a double can hold."""
    body = {"totalTokenCount": '{"usageMetadata":{"totalTokenCount":%s}}',
            "timeLeft": '{"goAway":{"timeLeft":%s}}',
            "seconds": '{"goAway":{"timeLeft":{"seconds":%s,"nanos":%s}}}'}[key]
    receive(body.replace("%s", literal))


@settings(FUZZ, max_examples=60)
@given(st.integers(1, 20_000), st.sampled_from(('{"a":', "[", '{"serverContent":')),
       st.booleans())
@example(5000, '{"a":', False)
@example(900, "[", False)
def test_deep_nesting_never_escapes(depth: int, opener: str, closed: bool) -> None:
    closer = {"[": "]"}.get(opener, "}")
    inner = opener * depth + "1" + (closer * depth if closed else "")
    receive('{"serverContent":' + inner + "}")


@FUZZ
@given(st.lists(st.tuples(any_text, st.sampled_from(("set_volume", "stop", "other")),
                          st.one_of(json_objects,
                                    st.builds(lambda v: {"level": v}, json_values))),
                max_size=3))
@example([("1", "set_volume", {"level": math.inf})])
def test_decoded_tool_calls_never_break_the_tools(calls: list) -> None:
    """A call from the server goes through tools.run on the loop: it must not raise."""
    frame = json.dumps({"toolCall": {"functionCalls": [{"id": i, "name": n, "args": a}
                                                       for i, n, a in calls]}})
    device = tools.Device(set_volume=lambda v: None, stop=lambda: None)
    for event in receive(frame):
        if isinstance(event, lc.ToolCall):
            for call in event.calls:
                result, scheduling = tools.run(call, device)
                assert isinstance(result, dict) and isinstance(scheduling, str)
                json.dumps(result)  # it goes back to the server as JSON


@settings(FUZZ, max_examples=150)
@given(st.lists(st.one_of(valid_message().map(lambda b: json.dumps(b[0])),
                          st.binary(max_size=50), json_values.map(json.dumps)),
                min_size=1, max_size=5))
def test_one_codec_survives_any_sequence_of_frames(frames: list[str | bytes]) -> None:
    """The codec keeps state (its phase): a bad frame must not break the next good one."""
    c = codec()
    for frame in frames:
        for event in c.receive(frame):
            assert_well_typed(event)
    good = c.receive(b'{"serverContent":{"turnComplete":true}}')
    assert good == [ev.TurnComplete()]
