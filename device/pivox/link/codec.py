"""Gemini Live ("BidiGenerateContent") frames in, events out; requests in, frames out.

Sans-I/O in the manner of python-websockets' protocol object: no socket, no clock, no
asyncio. The session adapter moves frames between this object and a websocket, and the
reference server reuses the same normalising decoder, so both sides share one set of rules.

Wire rules honoured here: `setup` first and nothing else until `setupComplete`; camelCase
out, camelCase or snake_case in; standard base64 out, either alphabet in; every part of
every `serverContent` is decoded; unknown fields are ignored; a frame that cannot be
understood becomes a `FrameError` event instead of an exception.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pivox.core import events as ev
from pivox.core.formats import MIC_MIME as INPUT_MIME
from pivox.core.formats import MODEL_RATE as OUTPUT_RATE
from pivox.core.models import ModelProfile
from pivox.link.base import FunctionCall as FunctionCall  # re-exported for tools
from pivox.link.base import ToolCall as ToolCall
from pivox.link.base import ToolCallCancelled as ToolCallCancelled
from pivox.link.base import Transcript as Transcript

# Keys whose values are user data (tool arguments and results): never re-cased.
OPAQUE_KEYS = frozenset({"args", "response", "parameters", "properties"})

# ------------------------------------------------------------------ codec events


@dataclass(frozen=True)
class SetupComplete:
    pass


@dataclass(frozen=True)
class GoAway:
    time_left_s: float


@dataclass(frozen=True)
class SessionHandle:
    handle: str
    resumable: bool


@dataclass(frozen=True)
class Usage:
    total_tokens: int


@dataclass(frozen=True)
class FrameError:
    reason: str


@dataclass(frozen=True)
class ServerError:
    """An `error` message: the server reports a failure (it usually closes next)."""

    code: int
    message: str
    status: str


ServerEvent = (
    SetupComplete
    | ev.AudioOut
    | ev.Interrupted
    | ev.GenerationComplete
    | ev.TurnComplete
    | GoAway
    | SessionHandle
    | ToolCall
    | ToolCallCancelled
    | Transcript
    | Usage
    | ev.ServerBusy
    | ServerError
    | FrameError
)

# ------------------------------------------------------------------ setup options


@dataclass(frozen=True)
class ToolDeclaration:
    name: str
    description: str
    parameters: dict[str, Any] | None = None
    blocking: bool = False  # only sent where the profile supports async tools


@dataclass(frozen=True)
class SetupOptions:
    """Everything `setup` can carry that the device decides. Validated by config."""

    model: str
    voice: str = "Kore"
    system_instruction: str = ""
    language: str = ""
    start_sensitivity: str = "START_SENSITIVITY_HIGH"
    end_sensitivity: str = "END_SENSITIVITY_HIGH"
    prefix_padding_ms: int = 20
    silence_duration_ms: int = 500
    automatic_activity: bool = True  # False: the device sends activityStart / activityEnd
    activity_handling: str = "START_OF_ACTIVITY_INTERRUPTS"
    input_transcription: bool = False
    output_transcription: bool = False
    context_compression: bool = True
    thinking_level: str = ""
    thinking_budget: int | None = None
    proactive_audio: bool | None = None
    affective_dialog: bool | None = None
    tools: tuple[ToolDeclaration, ...] = field(default_factory=tuple)
    search: bool = False  # Google Search grounding, where the profile allows it


def build_setup(opts: SetupOptions, profile: ModelProfile,
                handle: str | None) -> dict[str, Any]:
    """The `setup` message body for `opts`, carrying only what `profile` allows."""
    speech: dict[str, Any] = {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": opts.voice}}
    }
    if opts.language:
        speech["languageCode"] = opts.language
    gen: dict[str, Any] = {"responseModalities": ["AUDIO"], "speechConfig": speech}
    if profile.thinking == "thinkingLevel" and opts.thinking_level:
        gen["thinkingConfig"] = {"thinkingLevel": opts.thinking_level}
    elif profile.thinking == "thinkingBudget" and opts.thinking_budget is not None:
        gen["thinkingConfig"] = {"thinkingBudget": opts.thinking_budget}
    model = opts.model if opts.model.startswith("models/") else f"models/{opts.model}"
    setup: dict[str, Any] = {
        "model": model,
        "generationConfig": gen,
        "realtimeInputConfig": {
            "automaticActivityDetection": {
                "disabled": False,
                "startOfSpeechSensitivity": opts.start_sensitivity,
                "endOfSpeechSensitivity": opts.end_sensitivity,
                "prefixPaddingMs": opts.prefix_padding_ms,
                "silenceDurationMs": opts.silence_duration_ms,
            } if opts.automatic_activity else {"disabled": True},
            "activityHandling": opts.activity_handling,
        },
        "sessionResumption": {"handle": handle} if handle else {},
    }
    if opts.system_instruction:
        setup["systemInstruction"] = {"parts": [{"text": opts.system_instruction}]}
    if opts.tools:
        decls = []
        for tool in opts.tools:
            d: dict[str, Any] = {"name": tool.name, "description": tool.description}
            if tool.parameters:
                d["parameters"] = tool.parameters
            if profile.async_tools:
                d["behavior"] = "BLOCKING" if tool.blocking else "NON_BLOCKING"
            decls.append(d)
        setup["tools"] = [{"functionDeclarations": decls}]
    if opts.search and profile.search:
        setup.setdefault("tools", []).append({"googleSearch": {}})
    if opts.context_compression:
        setup["contextWindowCompression"] = {"slidingWindow": {}}
    if opts.input_transcription:
        setup["inputAudioTranscription"] = {}
    if opts.output_transcription:
        setup["outputAudioTranscription"] = {}
    if profile.proactivity and opts.proactive_audio is not None:
        setup["proactivity"] = {"proactiveAudio": opts.proactive_audio}
    if profile.affective_dialog and opts.affective_dialog is not None:
        gen["enableAffectiveDialog"] = opts.affective_dialog
    return {"setup": setup}


# ------------------------------------------------------------------ shared decoding helpers

_SNAKE = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def normalize_keys(obj: Any) -> Any:
    """Re-case every key to camelCase, as Google's parser accepts either spelling."""
    if isinstance(obj, dict):
        return {
            camel(k): (v if camel(k) in OPAQUE_KEYS else normalize_keys(v)) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [normalize_keys(v) for v in obj]
    return obj


def b64decode_any(data: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not. Raises ValueError."""
    if not isinstance(data, str):
        raise ValueError("base64 data is not a string")
    s = data.strip().replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from None


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_frame(frame: str | bytes) -> dict[str, Any]:
    """JSON object from a text or binary frame, keys camelCased. Raises ValueError."""
    try:
        obj = json.loads(frame)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    out: dict[str, Any] = normalize_keys(obj)
    return out


def parse_duration(value: Any) -> float:
    """A protobuf Duration ("50s", "1.5s") or an object with seconds/nanos, in seconds."""
    if isinstance(value, str) and value.endswith("s"):
        return float(value[:-1])
    if isinstance(value, dict):
        return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"bad duration {value!r}")


# ------------------------------------------------------------------ the codec


class Phase(enum.Enum):
    NEW = "new"
    SETUP_SENT = "setup-sent"
    READY = "ready"


class ProtocolStateError(RuntimeError):
    """A request that the protocol forbids in the current phase (a bug, not bad input)."""


class LiveCodec:
    """One Live connection's protocol state. Not thread-safe; owned by one task."""

    def __init__(self, profile: ModelProfile) -> None:
        self.profile = profile
        self.phase = Phase.NEW
        self._out: list[str] = []

    # -- requests
    def start(self, opts: SetupOptions, handle: str | None = None) -> None:
        if self.phase is not Phase.NEW:
            raise ProtocolStateError("setup may only be sent once, first")
        self._queue(build_setup(opts, self.profile, handle))
        self.phase = Phase.SETUP_SENT

    def send_audio(self, pcm: bytes) -> None:
        self._require_ready("audio")
        self._queue({"realtimeInput": {"audio": {"mimeType": INPUT_MIME, "data": b64encode(pcm)}}})

    def send_activity(self, start: bool) -> None:
        """The user's turn starts or ends (only with automatic activity detection off)."""
        self._require_ready("activityStart" if start else "activityEnd")
        self._queue({"realtimeInput": {"activityStart" if start else "activityEnd": {}}})

    def send_audio_end(self) -> None:
        self._require_ready("audioStreamEnd")
        self._queue({"realtimeInput": {"audioStreamEnd": True}})

    def send_text(self, text: str) -> None:
        self._require_ready("clientContent")
        self._queue({"clientContent": {"turns": [{"role": "user", "parts": [{"text": text}]}],
                                       "turnComplete": True}})

    def send_tool_response(self, call: FunctionCall, result: dict[str, Any],
                           scheduling: str = "") -> None:
        self._require_ready("toolResponse")
        resp: dict[str, Any] = {"id": call.id, "name": call.name, "response": result}
        if scheduling and self.profile.tool_scheduling:
            resp["scheduling"] = scheduling
        self._queue({"toolResponse": {"functionResponses": [resp]}})

    def frames_to_send(self) -> list[str]:
        out, self._out = self._out, []
        return out

    # -- server frames
    def receive(self, frame: str | bytes) -> list[ServerEvent]:
        try:
            msg = parse_frame(frame)
            return self._decode(msg)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
                RecursionError) as exc:  # whatever a frame holds, it is skipped, not fatal
            return [FrameError(f"{type(exc).__name__}: {str(exc)[:200]}")]

    # -- internals
    def _queue(self, obj: dict[str, Any]) -> None:
        self._out.append(json.dumps(obj, separators=(",", ":")))

    def _require_ready(self, what: str) -> None:
        if self.phase is not Phase.READY:
            raise ProtocolStateError(f"{what} before setupComplete")

    def _decode(self, msg: dict[str, Any]) -> list[ServerEvent]:
        out: list[ServerEvent] = []
        if "setupComplete" in msg:
            self.phase = Phase.READY
            out.append(SetupComplete())
        content = msg.get("serverContent")
        if isinstance(content, dict):
            out.extend(self._content(content))
        if "toolCall" in msg:
            calls = tuple(
                FunctionCall(str(c.get("id", "")), str(c["name"]), dict(c.get("args") or {}))
                for c in msg["toolCall"].get("functionCalls", [])
            )
            out.append(ToolCall(calls))
        if "toolCallCancellation" in msg:
            ids = msg["toolCallCancellation"].get("ids", [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise TypeError("toolCallCancellation.ids: expected a list of strings")
            out.append(ToolCallCancelled(tuple(ids)))
        if "goAway" in msg:
            out.append(GoAway(parse_duration(msg["goAway"].get("timeLeft", "0s"))))
        upd = msg.get("sessionResumptionUpdate")
        if isinstance(upd, dict):
            out.append(SessionHandle(str(upd.get("newHandle") or ""),
                                     bool(upd.get("resumable", False))))
        usage = msg.get("usageMetadata")
        if isinstance(usage, dict) and "totalTokenCount" in usage:
            out.append(Usage(int(usage["totalTokenCount"])))
        out.extend(_busy(msg.get("interactionStatus")))
        if "error" in msg:
            out.append(_error(msg["error"]))
        return out

    def _content(self, c: dict[str, Any]) -> list[ServerEvent]:
        out: list[ServerEvent] = []
        if c.get("interrupted"):
            out.append(ev.Interrupted())
        turn = c.get("modelTurn")
        if isinstance(turn, dict):
            for part in turn.get("parts", []):
                blob = part.get("inlineData") if isinstance(part, dict) else None
                if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("audio/pcm"):
                    rate = _rate(blob["mimeType"])
                    if rate != OUTPUT_RATE:
                        out.append(FrameError(f"unexpected output rate {rate}"))
                        continue
                    out.append(ev.AudioOut(b64decode_any(blob.get("data", ""))))
        for key, direction in (("inputTranscription", "input"),
                               ("outputTranscription", "output")):
            tr = c.get(key)
            if isinstance(tr, dict) and (tr.get("text") or tr.get("finished")):
                out.append(Transcript(direction, str(tr.get("text", "")),
                                      bool(tr.get("finished", False))))
        out.extend(_busy(c.get("interactionStatus")))
        if c.get("generationComplete"):
            out.append(ev.GenerationComplete())
        if c.get("turnComplete"):
            out.append(ev.TurnComplete())
        return out


def _error(err: Any) -> ServerError:
    """`{"error": {"code", "message", "status"}}`, whatever of it is there."""
    if not isinstance(err, dict):
        return ServerError(0, str(err)[:500], "")
    code = err.get("code", 0)
    return ServerError(code if isinstance(code, int) and not isinstance(code, bool) else 0,
                       str(err.get("message", ""))[:500], str(err.get("status", ""))[:100])


def _busy(status: Any) -> list[ServerEvent]:
    if status in ("IN_PROGRESS", "IDLE"):
        return [ev.ServerBusy(status == "IN_PROGRESS")]
    return []


def _rate(mime: str) -> int:
    m = re.search(r"rate=(\d+)", mime)
    return int(m.group(1)) if m else OUTPUT_RATE
