"""The reference server against a real websockets client on loopback.

Every frame the server sends is checked with google-genai's own `LiveServerMessage`
type, so the server cannot drift from what Google's SDK accepts. Audio is fed faster than
real time; the server's end-pointer counts audio, not seconds.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import logging
import ssl
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google import genai
from google.genai import types
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pivox.core import events as ev
from pivox.core.models import PROFILES
from pivox.link import codec as lc
from pivox.reference.server import LIVE_PATH, Faults, ReferenceServer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "question_16k.wav"
MODEL = "models/gemini-3.8-live"
FRAME_BYTES = 640  # 20 ms at 16 kHz s16


def question() -> bytes:
    with wave.open(str(FIXTURE)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.readframes(w.getnframes())


def silence(ms: int) -> bytes:
    return bytes(32 * ms)


def utterance() -> bytes:
    """Quiet, the question, then a second of quiet: one complete user turn."""
    return silence(300) + question() + silence(1000)


class Client:
    """A plain websockets client that validates and keeps every server frame."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    async def setup(self, setup: dict[str, Any] | None = None) -> None:
        await self.send({"setup": setup or {"model": MODEL}})
        assert await self.recv() == {"setupComplete": {}}

    async def speak(self, pcm: bytes, *, urlsafe: bool = False, chunks: bool = False) -> None:
        """Send `pcm` in 20 ms frames, as fast as the socket takes them."""
        enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
        for i in range(0, len(pcm), FRAME_BYTES):
            blob = {"mimeType": "audio/pcm;rate=16000",
                    "data": enc(pcm[i : i + FRAME_BYTES]).decode()}
            body = {"mediaChunks": [blob]} if chunks else {"audio": blob}
            await self.send({"realtimeInput": body})

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, bytes), "the server must send binary frames, as Google does"
        types.LiveServerMessage.model_validate_json(raw)
        msg = json.loads(raw)
        self.messages.append(msg)
        return msg

    async def until(self, pred: Callable[[dict[str, Any]], bool],
                    timeout: float = 15) -> list[dict[str, Any]]:
        """Messages up to and including the first for which `pred` holds."""
        out = []
        while True:
            msg = await self.recv(timeout)
            out.append(msg)
            if pred(msg):
                return out

    async def closed(self) -> tuple[int, str]:
        """Read until the server closes; its close code and reason."""
        try:
            while True:
                await self.recv()
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, exc.rcvd.reason


def content(msg: dict[str, Any]) -> dict[str, Any]:
    return msg.get("serverContent") or {}


def turn_complete(msg: dict[str, Any]) -> bool:
    return bool(content(msg).get("turnComplete"))


def events(msgs: list[dict[str, Any]]) -> list[str]:
    """The turn's shape: "audio" per audio part, then the serverContent flags in order."""
    out = []
    for m in msgs:
        c = content(m)
        out += ["audio" for p in (c.get("modelTurn") or {}).get("parts", []) if "inlineData" in p]
        out += [k for k in ("interrupted", "generationComplete", "turnComplete") if c.get(k)]
    return out


def reply_audio(msgs: list[dict[str, Any]]) -> bytes:
    out = b""
    for m in msgs:
        for p in (content(m).get("modelTurn") or {}).get("parts", []):
            assert p["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
            out += lc.b64decode_any(p["inlineData"]["data"])
    return out


def transcript(msgs: list[dict[str, Any]]) -> str:
    return "".join((content(m).get("outputTranscription") or {}).get("text", "") for m in msgs)


def run(body: Callable[[ReferenceServer, Client], Awaitable[Any]], *, path: str = LIVE_PATH,
        headers: dict[str, str] | None = None, **server_kw: Any) -> ReferenceServer:
    """Start a server, connect one client, run `body`, stop; returns the server."""
    server_kw.setdefault("pace", 50.0)
    server_kw.setdefault("playback_hold", False)

    async def main() -> ReferenceServer:
        server = ReferenceServer(**server_kw)
        await server.start()
        try:
            url = f"ws://127.0.0.1:{server.port}{path}"
            async with connect(url, additional_headers=headers or {}) as ws:
                await body(server, Client(ws))
        finally:
            await server.stop()
        return server

    return asyncio.run(main())


def setup_for(model: str) -> dict[str, Any]:
    """The setup the device itself builds for `model`, with every option it can send."""
    profile = PROFILES[model]
    tool = lc.ToolDeclaration("set_volume", "Set the speaker volume.",
                              {"type": "OBJECT", "properties": {"level": {"type": "INTEGER"}}})
    opts = lc.SetupOptions(model=model, system_instruction="You are a kitchen speaker.",
                           input_transcription=True, output_transcription=True,
                           thinking_level="MINIMAL", thinking_budget=0, proactive_audio=True,
                           affective_dialog=True, tools=(tool,))
    return lc.build_setup(opts, profile, None)["setup"]


# ------------------------------------------------------------------ setup


def test_setup_is_answered_with_setup_complete_in_a_binary_frame() -> None:
    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()

    server = run(body)
    assert server.stats.connections == 1 and server.stats.setups == 1
    assert server.received == [{"setup": {"model": MODEL}}]


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_the_devices_own_setup_is_accepted_for_every_model(model: str) -> None:
    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup(setup_for(model))

    run(body)


REJECTED = [
    ("gemini-3.8-live", {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}},
     "thinkingConfig"),
    ("gemini-3.8-live", {"proactivity": {"proactiveAudio": False}}, "proactivity"),
    ("gemini-3.8-live", {"generationConfig": {"enableAffectiveDialog": True}},
     "enableAffectiveDialog"),
    ("gemini-3.8-live", {"generationConfig": {"responseModalities": ["TEXT"]}},
     "responseModalities"),
    ("gemini-3.1-flash-live-preview",
     {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, "thinkingBudget"),
    ("gemini-3.1-flash-live-preview", {"proactivity": {"proactiveAudio": True}}, "proactivity"),
    ("gemini-3.1-flash-live-preview",
     {"tools": [{"functionDeclarations": [{"name": "f", "behavior": "NON_BLOCKING"}]}]},
     "behavior"),
    ("gemini-3.1-flash-live-preview",
     {"generationConfig": {"thinkingConfig": {"thinkingLevel": "minimal"}}}, "thinkingLevel"),
    ("gemini-2.5-flash-native-audio-preview-12-2025",
     {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}, "thinkingLevel"),
    ("gemini-3.8-live", {"realtimeInputConfig": {"activityHandling": "NEVER"}},
     "activityHandling"),
]


@pytest.mark.parametrize(("model", "extra", "field"), REJECTED)
def test_a_setup_the_model_cannot_honour_is_closed_1007_naming_the_field(
        model: str, extra: dict[str, Any], field: str) -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.send({"setup": {"model": f"models/{model}", **extra}})
        got["close"] = await c.closed()

    server = run(body)
    code, reason = got["close"]
    assert code == 1007 and field in reason, reason
    assert len(reason.encode()) <= 123
    assert server.stats.setups == 0 and server.stats.frames_rejected == 1


def test_unknown_model_is_closed_1008() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.send({"setup": {"model": "models/gemini-9-live"}})
        got["close"] = await c.closed()

    run(body)
    code, reason = got["close"]
    assert code == 1008 and reason.startswith("models/gemini-9-live is not found"), reason
    assert len(reason.encode()) <= 123


# ------------------------------------------------------------------ turns


@pytest.mark.parametrize("model", sorted(set(PROFILES) - {"gemini-3.8-live-extended-thinking"}))
def test_a_spoken_question_gets_audio_then_generation_complete_then_turn_complete(
        model: str) -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup(setup_for(model))
        await c.speak(utterance())
        got["turn"] = await c.until(turn_complete)

    server = run(body)
    turn = got["turn"]
    shape = events(turn)
    assert shape[-2:] == ["generationComplete", "turnComplete"]
    assert set(shape[:-2]) == {"audio"}
    assert reply_audio(turn) == server.replies[0].pcm
    assert transcript(turn) == server.replies[0].text
    assert turn[-1]["usageMetadata"]["totalTokenCount"] > 0
    assert server.stats.turns == 1 and server.stats.replies == 1
    assert server.stats.audio_bytes_in == len(utterance())


def test_snake_case_setup_url_safe_base64_and_media_chunks_are_accepted() -> None:
    got: dict[str, Any] = {}
    pcm = utterance()
    urlsafe = [base64.urlsafe_b64encode(pcm[i : i + FRAME_BYTES]).decode()
               for i in range(0, len(pcm), FRAME_BYTES)]
    assert any("-" in s or "_" in s for s in urlsafe), "the fixture must exercise the alphabet"

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.send({"setup": {"model": MODEL, "generation_config": {
            "response_modalities": ["AUDIO"]}, "realtime_input_config": {
            "automatic_activity_detection": {"disabled": False},
            "activity_handling": "START_OF_ACTIVITY_INTERRUPTS"},
            "output_audio_transcription": {}}})
        assert await c.recv() == {"setupComplete": {}}
        half = len(pcm) // 2 // FRAME_BYTES * FRAME_BYTES
        for i in range(0, half, FRAME_BYTES):  # the SDK's own spelling and alphabet
            await c.send({"realtime_input": {"audio": {
                "mime_type": "audio/pcm;rate=16000",
                "data": base64.urlsafe_b64encode(pcm[i : i + FRAME_BYTES]).decode()}}})
        await c.speak(pcm[half:], urlsafe=True, chunks=True)
        got["turn"] = await c.until(turn_complete)

    server = run(body)
    assert events(got["turn"])[-2:] == ["generationComplete", "turnComplete"]
    assert transcript(got["turn"]) == server.replies[0].text
    assert server.stats.audio_bytes_in == len(pcm)
    assert "realtimeInput" in server.received[1]  # recorded re-cased to camelCase


def test_speaking_during_the_reply_interrupts_it() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        await c.speak(utterance())
        first = await c.until(lambda m: bool(content(m).get("modelTurn")))
        await c.speak(question() + silence(1000))  # barge in while the reply streams
        got["turn1"] = first + await c.until(turn_complete)
        got["turn2"] = await c.until(turn_complete)

    server = run(body, pace=2.0, playback_hold=True)
    shape = events(got["turn1"])
    assert shape[-2:] == ["interrupted", "turnComplete"]
    assert "generationComplete" not in shape
    assert len(reply_audio(got["turn1"])) < len(server.replies[0].pcm)
    # The interrupting speech is a turn of its own, answered with the next reply.
    assert events(got["turn2"])[-2:] == ["generationComplete", "turnComplete"]
    assert reply_audio(got["turn2"]) == server.replies[1].pcm
    assert server.stats.interruptions == 1 and server.stats.turns == 2


def test_speaking_while_the_reply_is_still_playing_interrupts_after_generation_complete() -> None:
    """Google holds turnComplete until the reply would have finished playing."""
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        await c.speak(utterance())
        got["turn"] = await c.until(lambda m: bool(content(m).get("generationComplete")))
        await c.speak(question())
        got["turn"] += await c.until(turn_complete)

    server = run(body, pace=50.0, playback_hold=True)
    assert events(got["turn"])[-3:] == ["generationComplete", "interrupted", "turnComplete"]
    assert server.stats.interruptions == 1


def test_no_interruption_lets_the_reply_finish_then_answers_the_next_turn() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup({"model": MODEL,
                       "realtimeInputConfig": {"activityHandling": "NO_INTERRUPTION"}})
        await c.speak(utterance())
        first = await c.until(lambda m: bool(content(m).get("modelTurn")))
        await c.speak(utterance())
        got["turn1"] = first + await c.until(turn_complete)
        got["turn2"] = await c.until(turn_complete)

    server = run(body, pace=1.5)
    assert events(got["turn1"])[-2:] == ["generationComplete", "turnComplete"]
    assert reply_audio(got["turn1"]) == server.replies[0].pcm
    assert reply_audio(got["turn2"]) == server.replies[1].pcm
    assert server.stats.interruptions == 0 and server.stats.turns == 2


def test_a_text_turn_is_answered_and_replies_rotate() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        for _ in range(4):
            await c.send({"clientContent": {"turns": [{"role": "user", "parts": [
                {"text": "What is the weather like?"}]}], "turnComplete": True}})
            got.setdefault("turns", []).append(await c.until(turn_complete))

    server = run(body)
    names = [reply_audio(t) for t in got["turns"]]
    n = len(server.replies)
    assert names == [server.replies[i % n].pcm for i in range(4)]


def test_explicit_activity_marks_the_turn_when_automatic_detection_is_off() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup({"model": MODEL, "realtimeInputConfig": {
            "automaticActivityDetection": {"disabled": True}}})
        await c.send({"realtimeInput": {"activityStart": {}}})
        await c.speak(question()[:16000])  # too short and no silence: only activityEnd ends it
        await c.send({"realtimeInput": {"activityEnd": {}}})
        got["turn"] = await c.until(turn_complete)

    server = run(body)
    assert events(got["turn"])[-2:] == ["generationComplete", "turnComplete"]
    assert server.stats.turns == 1


def test_a_resumed_session_continues_where_it_left_off() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup({"model": MODEL, "sessionResumption": {}})
        await c.send({"clientContent": {"turns": [{"parts": [{"text": "hi"}]}],
                      "turnComplete": True}})
        await c.until(turn_complete)
        update = await c.recv()
        handle = update["sessionResumptionUpdate"]["newHandle"]
        assert update["sessionResumptionUpdate"]["resumable"] and handle
        async with connect(server.url) as ws2:
            c2 = Client(ws2)
            await c2.setup({"model": MODEL, "sessionResumption": {"handle": handle}})
            await c2.send({"clientContent": {"turns": [{"parts": [{"text": "and?"}]}],
                           "turnComplete": True}})
            got["turn"] = await c2.until(turn_complete)

    server = run(body)
    assert reply_audio(got["turn"]) == server.replies[1].pcm


# ------------------------------------------------------------------ bad input


BAD_MESSAGES: list[tuple[str, Any, str]] = [
    ("two kinds", {"clientContent": {}, "realtimeInput": {"audioStreamEnd": True}},
     "exactly one"),
    ("no kind", {}, "exactly one"),
    ("unknown kind", {"realtimeinput": {}}, "exactly one"),
    ("two inputs", {"realtimeInput": {"audioStreamEnd": True, "activityEnd": {}}},
     "exactly one input"),
    ("bad JSON", "{not json", "JSON"),
    ("bad base64", {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000",
                                                "data": "AAA*"}}}, "data"),
    ("not PCM", {"realtimeInput": {"audio": {"mimeType": "audio/wav", "data": ""}}},
     "mimeType"),
    ("second setup", {"setup": {"model": MODEL}}, "once"),
    ("explicit activity with automatic detection", {"realtimeInput": {"activityStart": {}}},
     "automatic activity detection"),
    ("tool response without id", {"toolResponse": {"functionResponses": [
        {"name": "f", "response": {}}]}}, "id is required"),
]


@pytest.mark.parametrize(("name", "message", "words"), BAD_MESSAGES,
                         ids=[b[0] for b in BAD_MESSAGES])
def test_a_bad_message_is_closed_1007_with_a_reason(name: str, message: Any, words: str) -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        raw = message if isinstance(message, str) else json.dumps(message)
        await c.ws.send(raw.encode())  # binary from the client is accepted too
        got["close"] = await c.closed()

    server = run(body)
    code, reason = got["close"]
    assert code == 1007 and words in reason, reason
    assert server.stats.frames_rejected == 1


def test_audio_before_setup_is_closed_1007() -> None:
    got: dict[str, Any] = {}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.speak(silence(20))
        got["close"] = await c.closed()

    run(body)
    assert got["close"][0] == 1007 and "setup" in got["close"][1]


def test_a_tool_response_is_recorded() -> None:
    msg = {"toolResponse": {"functionResponses": [
        {"id": "fc1", "name": "set_volume", "response": {"result": "ok"}}]}}

    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        await c.send(msg)
        await c.send({"clientContent": {"turns": [], "turnComplete": True}})
        await c.until(turn_complete)  # still open and answering

    server = run(body)
    assert server.stats.tool_responses == 1 and msg in server.received


# ------------------------------------------------------------------ handshake


def test_other_paths_are_404() -> None:
    with pytest.raises(InvalidStatus) as err:
        run(lambda s, c: asyncio.sleep(0), path="/ws/something.else")
    assert err.value.response.status_code == 404


def test_the_constrained_method_path_is_served() -> None:
    path = LIVE_PATH.replace("v1beta", "v1alpha") + "Constrained?access_token=tok"
    run(lambda s, c: c.setup(), path=path)


def test_an_api_key_is_required_when_configured_and_never_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    key = "AIzaSy-reference-secret-42"
    caplog.set_level(logging.DEBUG, logger="pivox.reference")  # its websockets logs too
    run(lambda s, c: c.setup(), api_key=key, headers={"x-goog-api-key": key})
    run(lambda s, c: c.setup(), api_key=key, path=f"{LIVE_PATH}?key={key}")
    for headers in ({"x-goog-api-key": "wrong"}, {}):
        with pytest.raises(InvalidStatus) as err:
            run(lambda s, c: c.setup(), api_key=key, headers=headers)
        assert err.value.response.status_code == 403
    assert key not in caplog.text


# ------------------------------------------------------------------ Google's SDK as the client


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client TLS contexts for 127.0.0.1 (the SDK insists on wss)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return server, ssl.create_default_context(cafile=str(tmp / "cert.pem"))


def test_googles_sdk_holds_a_spoken_conversation_with_the_server(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    got: dict[str, Any] = {"audio": b"", "text": ""}

    async def main() -> ReferenceServer:
        server = ReferenceServer(pace=50.0, playback_hold=False, api_key="sdk-key",
                                 ssl=server_tls)
        await server.start()
        client = genai.Client(api_key="sdk-key", http_options=types.HttpOptions(
            base_url=f"https://127.0.0.1:{server.port}", api_version="v1beta",
            async_client_args={"ssl": client_tls}))
        config = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO],
                                         output_audio_transcription={})
        try:
            async with client.aio.live.connect(model="gemini-3.8-live", config=config) as s:
                pcm = utterance()
                for i in range(0, len(pcm), FRAME_BYTES):
                    await s.send_realtime_input(audio=types.Blob(
                        data=pcm[i : i + FRAME_BYTES], mime_type="audio/pcm;rate=16000"))
                async for msg in s.receive():
                    got["audio"] += msg.data or b""
                    sc = msg.server_content
                    if sc and sc.output_transcription:
                        got["text"] += sc.output_transcription.text or ""
                    if sc and sc.turn_complete:
                        break
        finally:
            await server.stop()
        return server

    server = asyncio.run(asyncio.wait_for(main(), 30))
    assert got["audio"] == server.replies[0].pcm
    assert got["text"] == server.replies[0].text
    assert server.stats.audio_bytes_in == len(utterance())


@pytest.mark.parametrize("model", ["gemini-3.8-live", "gemini-3.1-flash-live-preview"])
def test_the_devices_codec_understands_every_frame(model: str) -> None:
    """The device's own codec drives the server and decodes its replies without error."""
    got: dict[str, Any] = {"events": []}

    async def body(server: ReferenceServer, c: Client) -> None:
        codec = lc.LiveCodec(PROFILES[model])
        codec.start(lc.SetupOptions(model=model, output_transcription=True))
        pcm = utterance()
        for i in range(0, len(pcm), FRAME_BYTES):
            if codec.phase is lc.Phase.READY:
                codec.send_audio(pcm[i : i + FRAME_BYTES])
            for frame in codec.frames_to_send():
                await c.ws.send(frame)
            if codec.phase is not lc.Phase.READY:
                got["events"] += codec.receive(await c.ws.recv())
        while not any(isinstance(e, ev.TurnComplete) for e in got["events"]):
            got["events"] += codec.receive(await asyncio.wait_for(c.ws.recv(), 10))

    server = run(body)
    evs = got["events"]
    assert not [e for e in evs if isinstance(e, lc.FrameError)]
    assert isinstance(evs[0], lc.SetupComplete)
    assert b"".join(e.pcm for e in evs if isinstance(e, ev.AudioOut)) == server.replies[0].pcm
    said = "".join(e.text for e in evs if isinstance(e, lc.Transcript))
    assert said == server.replies[0].text
    kinds = [type(e) for e in evs if not isinstance(e, ev.AudioOut | lc.Transcript)]
    assert kinds[-3:] == [ev.GenerationComplete, ev.TurnComplete, lc.Usage]


# ------------------------------------------------------------------ faults


def test_a_stalled_server_answers_nothing_and_keeps_the_socket_open() -> None:
    """Only the first connection stalls; the second is served as usual."""
    async def body(server: ReferenceServer, c: Client) -> None:
        await c.setup()
        await asyncio.sleep(0.2)  # past stall_after_s
        await c.speak(utterance())
        with pytest.raises(TimeoutError):
            await c.recv(timeout=1.5)
        assert c.ws.close_code is None
        async with connect(server.url) as ws2:
            second = Client(ws2)
            await second.setup()
            await second.speak(utterance())
            await second.until(turn_complete)

    server = run(body, faults=Faults(stall_after_s=0.05))
    assert server.stats.turns == 2 and server.stats.replies == 2
