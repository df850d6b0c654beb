"""The Live codec against the wire rules and Google's own message types."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from google.ai import generativelanguage_v1beta as glm
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st

from pivox.core import events as ev
from pivox.core.models import PROFILES, profile_for
from pivox.link import codec as lc
from pivox.link import tools as device_tools
from pivox.reference import rules


def ready_codec(model: str = "gemini-3.8-live") -> lc.LiveCodec:
    c = lc.LiveCodec(profile_for(model)[0])
    c.start(lc.SetupOptions(model=model))
    c.frames_to_send()
    c.receive(b'{"setupComplete":{}}')
    return c


def validate_client_frame(frame: str) -> None:
    """Both of Google's parsers must accept what the device sends."""
    obj = json.loads(frame)
    assert len(obj) == 1, "exactly one kind per message"
    # The published v1beta protos lag the service (no thinkingLevel, enableAffectiveDialog):
    # unknown fields pass here and are checked by the SDK's types below.
    glm.BidiGenerateContentClientMessage.from_json(frame, ignore_unknown_fields=True)
    if "setup" in obj:
        setup = dict(obj["setup"])
        setup.pop("model")
        types.LiveConnectConfig.model_validate(_flatten_setup(setup))
    else:
        types.LiveClientMessage.model_validate(obj)


def _flatten_setup(setup: dict) -> dict:
    """LiveConnectConfig carries generationConfig's fields at its top level."""
    gen = setup.pop("generationConfig", {})
    return {**setup, **gen}


def test_setup_goes_first_and_nothing_before_setup_complete() -> None:
    c = lc.LiveCodec(profile_for("gemini-3.8-live")[0])
    with pytest.raises(lc.ProtocolStateError):
        c.send_audio(b"\0\0")
    c.start(lc.SetupOptions(model="gemini-3.8-live"))
    (frame,) = c.frames_to_send()
    assert next(iter(json.loads(frame))) == "setup"
    with pytest.raises(lc.ProtocolStateError):
        c.send_audio(b"\0\0")
    assert c.receive('{"setupComplete":{}}') == [lc.SetupComplete()]
    c.send_audio(b"\1\0")
    (audio,) = c.frames_to_send()
    assert json.loads(audio) == {"realtimeInput": {"audio": {
        "mimeType": "audio/pcm;rate=16000", "data": "AQA="}}}


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_every_frame_validates_with_google_types(model: str) -> None:
    prof = profile_for(model)[0]
    opts = lc.SetupOptions(
        model=model, system_instruction="be brief", input_transcription=True,
        output_transcription=True, language="en-US",
        thinking_level="MINIMAL" if prof.thinking == "thinkingLevel" else "",
        thinking_budget=512 if prof.thinking == "thinkingBudget" else None,
        proactive_audio=True if prof.proactivity else None,
        affective_dialog=True if prof.affective_dialog else None,
        tools=(lc.ToolDeclaration("set_volume", "Set the speaker volume",
                                  {"type": "OBJECT", "properties": {"level": {
                                      "type": "INTEGER"}}}),),
    )
    c = lc.LiveCodec(prof)
    c.start(opts, handle="h-123")
    c.receive(b'{"setupComplete":{}}')
    c.send_audio(bytes(640))
    c.send_audio_end()
    c.send_text("hello")
    c.send_tool_response(lc.FunctionCall("fc1", "set_volume", {"level": 3}), {"result": "ok"},
                         scheduling="SILENT")
    frames = c.frames_to_send()
    assert len(frames) == 5
    for frame in frames:
        validate_client_frame(frame)


def test_setup_carries_only_what_the_model_allows() -> None:
    opts = lc.SetupOptions(model="gemini-3.8-live", thinking_level="LOW", proactive_audio=True,
                           affective_dialog=True,
                           tools=(lc.ToolDeclaration("stop", "Stop talking"),))
    setup = lc.build_setup(opts, profile_for("gemini-3.8-live")[0], None)["setup"]
    assert setup["model"] == "models/gemini-3.8-live"
    assert "thinkingConfig" not in setup["generationConfig"]
    assert "proactivity" not in setup and "enableAffectiveDialog" not in setup["generationConfig"]
    assert setup["tools"][0]["functionDeclarations"][0]["behavior"] == "NON_BLOCKING"
    s31 = lc.build_setup(opts, profile_for("gemini-3.1-flash-live-preview")[0], None)["setup"]
    assert s31["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert "behavior" not in s31["tools"][0]["functionDeclarations"][0]


def test_every_part_of_a_packed_frame_is_decoded() -> None:
    c = ready_codec()
    a, b = b"\x01\x02" * 8, b"\x03\x04" * 8
    frame = json.dumps({
        "serverContent": {
            "modelTurn": {"parts": [
                {"inlineData": {"mimeType": "audio/pcm;rate=24000",
                                "data": base64.b64encode(a).decode()}},
                {"text": "ignored thought"},
                {"inlineData": {"mimeType": "audio/pcm;rate=24000",
                                "data": base64.urlsafe_b64encode(b).decode().rstrip("=")}},
            ]},
            "outputTranscription": {"text": "Hello"},
            "generationComplete": True,
            "turnComplete": True,
            "waitingForInput": True,
        },
        "usageMetadata": {"totalTokenCount": 15},
    })
    types.LiveServerMessage.model_validate_json(frame.replace(',"waitingForInput":true', ""))
    assert c.receive(frame) == [ev.AudioOut(a), ev.AudioOut(b),
                                lc.Transcript("output", "Hello"), ev.GenerationComplete(),
                                ev.TurnComplete(), lc.Usage(15)]


def test_snake_case_and_binary_frames_are_accepted() -> None:
    c = ready_codec()
    frame = json.dumps({"server_content": {"model_turn": {"parts": [{"inline_data": {
        "mime_type": "audio/pcm;rate=24000", "data": "AQI="}}]}, "turn_complete": True}})
    assert c.receive(frame.encode()) == [ev.AudioOut(b"\x01\x02"), ev.TurnComplete()]


def test_barge_in_and_control_messages() -> None:
    c = ready_codec()
    assert c.receive('{"serverContent":{"interrupted":true}}') == [ev.Interrupted()]
    assert c.receive('{"goAway":{"timeLeft":"50s"}}') == [lc.GoAway(50.0)]
    assert c.receive('{"sessionResumptionUpdate":{"newHandle":"h1","resumable":true}}') == [
        lc.SessionHandle("h1", True)]
    assert c.receive('{"sessionResumptionUpdate":{"resumable":false}}') == [
        lc.SessionHandle("", False)]
    assert c.receive('{"toolCall":{"functionCalls":[{"id":"f","name":"stop","args":{}}]}}') == [
        lc.ToolCall((lc.FunctionCall("f", "stop", {}),))]
    assert c.receive("{}") == []
    assert c.receive('{"serverContent":{"interactionStatus":"IN_PROGRESS"}}') == [
        ev.ServerBusy(True)]
    assert c.receive('{"interactionStatus":"IDLE"}') == [ev.ServerBusy(False)]


@pytest.mark.parametrize("frame", [b"\xff\xfe", "not json", "[1,2]", '"text"',
                                   '{"serverContent":{"modelTurn":{"parts":[{"inlineData":'
                                   '{"mimeType":"audio/pcm;rate=24000","data":"@@@"}}]}}}',
                                   '{"goAway":{"timeLeft":"soon"}}'])
def test_bad_frames_become_frame_errors(frame: str | bytes) -> None:
    events = ready_codec().receive(frame)
    assert len(events) == 1 and isinstance(events[0], lc.FrameError)


@given(st.binary(max_size=2000))
def test_base64_both_alphabets_round_trip(data: bytes) -> None:
    assert lc.b64decode_any(base64.b64encode(data).decode()) == data
    assert lc.b64decode_any(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_decoder_never_raises(frame: bytes | str) -> None:
    for event in ready_codec().receive(frame):
        assert event is not None


def test_profiles_cover_three_families() -> None:
    families = {p.family for p in PROFILES.values()}
    assert len(families) == 3
    assert profile_for("no-such-model") == (PROFILES["gemini-3.8-live"], False)
    for a, b in itertools.combinations(families, 2):
        assert a != b


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_every_allowed_option_combination_validates(model: str) -> None:
    """Each setup the device can build for this model passes both of Google's parsers."""
    prof = profile_for(model)[0]
    thinking = {"thinkingLevel": [{"thinking_level": ""}, {"thinking_level": "MINIMAL"},
                                  {"thinking_level": "HIGH"}],
                "thinkingBudget": [{"thinking_budget": None}, {"thinking_budget": 0},
                                   {"thinking_budget": 1024}],
                None: [{}]}[prof.thinking]
    proactive = [None, True, False] if prof.proactivity else [None]
    affective = [None, True, False] if prof.affective_dialog else [None]
    tools = [(), (lc.ToolDeclaration("stop", "Stop"),
                  lc.ToolDeclaration("set_volume", "Volume", {"type": "OBJECT", "properties": {
                      "level": {"type": "INTEGER"}}}, blocking=True)),
             device_tools.declarations()]  # what the daemon declares: timers and alarms too
    count = searched = 0
    for think, pro, aff, tl, flags, handle in itertools.product(
            thinking, proactive, affective, tools, itertools.product([False, True], repeat=4),
            [None, "h-1"]):
        transcripts, compression, language, search = flags
        opts = lc.SetupOptions(model=model, proactive_audio=pro, affective_dialog=aff,
                               tools=tl, input_transcription=transcripts,
                               output_transcription=transcripts,
                               context_compression=compression, search=search,
                               language="en-US" if language else "", **think)
        setup = lc.build_setup(opts, prof, handle)
        frame = json.dumps(setup)
        validate_client_frame(frame)
        rules.check_setup(lc.parse_frame(frame)["setup"])  # and the reference server
        has = {"googleSearch": {}} in setup["setup"].get("tools", [])
        assert has is search, "Search grounding goes in exactly when asked for"
        searched += has
        count += 1
    assert count >= 64 and searched == count // 2


def test_search_grounding_is_on_by_default_and_can_be_left_out() -> None:
    from pivox import config
    from pivox.link.options import setup_options

    on = lc.build_setup(setup_options(config.parse("")), profile_for(
        "gemini-3.8-live")[0], None)["setup"]
    assert on["tools"][1] == {"googleSearch": {}}
    names = {d["name"] for d in on["tools"][0]["functionDeclarations"]}
    assert {"set_timer", "cancel_timer", "list_timers", "set_alarm"} <= names
    assert all(d["behavior"] == "NON_BLOCKING" for d in on["tools"][0]["functionDeclarations"]
               if d["name"] != "get_local_time")
    off = lc.build_setup(setup_options(config.parse("[link]\nsearch = false\n")),
                         profile_for("gemini-3.8-live")[0], None)["setup"]
    assert {"googleSearch": {}} not in off["tools"]
    plain = lc.build_setup(setup_options(config.parse(
        "[link]\nmodel = \"gemini-3.1-flash-live-preview\"\n")),
        profile_for("gemini-3.1-flash-live-preview")[0], None)["setup"]
    assert plain["tools"][1] == {"googleSearch": {}}
    assert not any("behavior" in d for d in plain["tools"][0]["functionDeclarations"])


@pytest.mark.parametrize("tool", [{"codeExecution": {}}, {"googleMaps": {}},
                                  {"urlContext": {}}, {"googleSearch": "yes"}])
def test_the_reference_server_refuses_tools_the_live_models_lack(tool: dict) -> None:
    setup = {"model": "models/gemini-3.8-live", "tools": [tool]}
    with pytest.raises(rules.ProtocolError) as err:
        rules.check_setup(setup)
    assert err.value.code == 1007


@pytest.mark.parametrize(("frame", "event"), [
    (b'{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}',
     lc.ServerError(429, "Quota exceeded", "RESOURCE_EXHAUSTED")),
    (b'{"error":{"message":"Internal error encountered."}}',
     lc.ServerError(0, "Internal error encountered.", "")),
    (b'{"error":{"code":"x","status":"UNAVAILABLE"}}', lc.ServerError(0, "", "UNAVAILABLE")),
    (b'{"error":"no"}', lc.ServerError(0, "no", "")),
])
def test_a_server_error_message_becomes_an_event(frame: bytes, event: lc.ServerError) -> None:
    assert ready_codec().receive(frame) == [event]
