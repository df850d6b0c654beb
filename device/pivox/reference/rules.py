"""What the reference server accepts from a client, checked the way Google checks it.

Google answers a `setup` the model cannot honour by closing with 1007 and a reason that
names the field, and an unknown model with 1008. Enforcing the same per-model rules here
(from `core.models`) means a client bug shows up in the test suite, not in the field.
Messages arrive already re-cased to camelCase by `codec.parse_frame`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pivox.core.formats import MIC_MIME, MIC_RATE
from pivox.core.models import THINKING_LEVELS, ModelProfile, bare_name, profile_for
from pivox.link.codec import b64decode_any

INVALID = 1007  # invalid argument: retrying the same message will not help
NOT_FOUND = 1008  # model not found / not supported
MAX_REASON = 123  # bytes a close reason may hold

CLIENT_KINDS = ("setup", "clientContent", "realtimeInput", "toolResponse")
REALTIME_KINDS = ("audio", "mediaChunks", "audioStreamEnd", "activityStart", "activityEnd",
                  "video", "text")
ACTIVITY_HANDLING = ("ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS",
                     "NO_INTERRUPTION")
TURN_COVERAGE = ("TURN_COVERAGE_UNSPECIFIED", "TURN_INCLUDES_ONLY_ACTIVITY",
                 "TURN_INCLUDES_ALL_INPUT", "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")
SENSITIVITY = {
    "startOfSpeechSensitivity": ("START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH",
                                 "START_SENSITIVITY_LOW"),
    "endOfSpeechSensitivity": ("END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH",
                               "END_SENSITIVITY_LOW"),
}
BEHAVIORS = ("UNSPECIFIED", "BLOCKING", "NON_BLOCKING")
SCHEDULING = ("SCHEDULING_UNSPECIFIED", "SILENT", "WHEN_IDLE", "INTERRUPT")
# Google Maps, code execution and URL context are not supported by the Live models.
TOOL_KINDS = ("functionDeclarations", "googleSearch")


class ProtocolError(Exception):
    """A client message Google would answer by closing the connection."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = clip_reason(reason)


def clip_reason(reason: str) -> str:
    """`reason` cut to the 123 bytes a close frame allows, on a character boundary."""
    data = reason.encode("utf-8")[:MAX_REASON]
    return data.decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class SessionConfig:
    """The parts of an accepted `setup` that change how the server behaves."""

    model: str  # without the models/ prefix
    profile: ModelProfile
    automatic_activity: bool
    interrupts: bool
    output_transcription: bool
    resumption: bool
    handle: str
    voice: str
    silence_ms: int | None = None  # automaticActivityDetection.silenceDurationMs, if sent


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(INVALID, f"{where}: expected an object")
    return value


def _enum(value: Any, allowed: tuple[str, ...], where: str) -> None:
    if value is not None and value not in allowed:
        raise ProtocolError(INVALID, f"Invalid value at '{where}' ({value!r})")


def _unsupported(where: str, model: str) -> ProtocolError:
    return ProtocolError(INVALID, f"{where} is not supported by {model}")


def check_setup(setup: Any) -> SessionConfig:
    """Validate a `setup` body against its model's profile. Raises ProtocolError."""
    setup = _obj(setup, "setup")
    model = setup.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError(INVALID, "setup.model is required")
    if not model.startswith("models/"):
        raise ProtocolError(INVALID, f"setup.model must be models/{{model}}, got {model!r}")
    profile, known = profile_for(model)
    if not known:
        raise ProtocolError(NOT_FOUND, f"{model} is not found for API version v1beta, or is "
                                       "not supported for bidiGenerateContent.")
    name = bare_name(model)

    gen = _obj(setup.get("generationConfig"), "setup.generationConfig")
    modalities = gen.get("responseModalities")
    if modalities is not None and modalities != ["AUDIO"]:
        raise ProtocolError(INVALID, "setup.generationConfig.responseModalities: "
                                     f"{name} supports only AUDIO")
    thinking = _obj(gen.get("thinkingConfig"), "setup.generationConfig.thinkingConfig")
    if "thinkingConfig" in gen and profile.thinking is None:
        raise _unsupported("setup.generationConfig.thinkingConfig", name)
    for key in ("thinkingLevel", "thinkingBudget"):
        if key in thinking and profile.thinking != key:
            raise _unsupported(f"setup.generationConfig.thinkingConfig.{key}", name)
    _enum(thinking.get("thinkingLevel"), THINKING_LEVELS,
          "setup.generationConfig.thinkingConfig.thinkingLevel")
    budget = thinking.get("thinkingBudget")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
        raise ProtocolError(INVALID, "setup.generationConfig.thinkingConfig.thinkingBudget: "
                                     "expected an integer")
    if "enableAffectiveDialog" in gen and not profile.affective_dialog:
        raise _unsupported("setup.generationConfig.enableAffectiveDialog", name)
    if "proactivity" in setup and not profile.proactivity:
        raise _unsupported("setup.proactivity", name)
    _check_tools(setup.get("tools"), profile, name)

    ric = _obj(setup.get("realtimeInputConfig"), "setup.realtimeInputConfig")
    aad = _obj(ric.get("automaticActivityDetection"),
               "setup.realtimeInputConfig.automaticActivityDetection")
    for key, allowed in SENSITIVITY.items():
        _enum(aad.get(key), allowed, f"setup.realtimeInputConfig.automaticActivityDetection.{key}")
    silence = aad.get("silenceDurationMs")
    if silence is not None and (not isinstance(silence, int) or isinstance(silence, bool)
                                or silence < 0):
        raise ProtocolError(INVALID, "Invalid value at 'setup.realtimeInputConfig."
                                     f"automaticActivityDetection.silenceDurationMs' ({silence!r})")
    _enum(ric.get("activityHandling"), ACTIVITY_HANDLING,
          "setup.realtimeInputConfig.activityHandling")
    _enum(ric.get("turnCoverage"), TURN_COVERAGE, "setup.realtimeInputConfig.turnCoverage")

    resumption = setup.get("sessionResumption")
    handle = _obj(resumption, "setup.sessionResumption").get("handle") or ""
    voice: Any = gen
    for key in ("speechConfig", "voiceConfig", "prebuiltVoiceConfig", "voiceName"):
        voice = voice.get(key) if isinstance(voice, dict) else None
    return SessionConfig(
        model=name,
        profile=profile,
        automatic_activity=not aad.get("disabled", False),
        interrupts=ric.get("activityHandling") != "NO_INTERRUPTION",
        output_transcription="outputAudioTranscription" in setup,
        resumption=resumption is not None,
        handle=str(handle),
        voice=voice if isinstance(voice, str) else "",
        silence_ms=silence,
    )


def _check_tools(tools: Any, profile: ModelProfile, name: str) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise ProtocolError(INVALID, "setup.tools: expected a list")
    for i, tool in enumerate(tools):
        tool = _obj(tool, f"setup.tools[{i}]")
        for kind in tool:
            if kind not in TOOL_KINDS or (kind == "googleSearch" and not profile.search):
                raise _unsupported(f"setup.tools[{i}].{kind}", name)
        _obj(tool.get("googleSearch"), f"setup.tools[{i}].googleSearch")
        decls = tool.get("functionDeclarations") or []
        for j, decl in enumerate(decls):
            where = f"setup.tools[{i}].functionDeclarations[{j}]"
            decl = _obj(decl, where)
            if not isinstance(decl.get("name"), str) or not decl["name"]:
                raise ProtocolError(INVALID, f"{where}.name is required")
            if "behavior" in decl:
                if not profile.async_tools:
                    raise _unsupported(f"{where}.behavior", name)
                _enum(decl["behavior"], BEHAVIORS, f"{where}.behavior")


def message_kind(msg: dict[str, Any]) -> str:
    """The one kind a client message carries. Raises ProtocolError for zero or several."""
    kinds = [k for k in msg if k in CLIENT_KINDS]
    if len(msg) != 1 or len(kinds) != 1:
        got = ", ".join(sorted(msg)) or "nothing"
        raise ProtocolError(INVALID, f"a message must carry exactly one of setup, clientContent,"
                                     f" realtimeInput, toolResponse; got {got}")
    return kinds[0]


def realtime_kind(body: Any) -> str:
    """The one input a `realtimeInput` carries. Raises ProtocolError for zero or several."""
    body = _obj(body, "realtimeInput")
    kinds: list[str] = [k for k in body if k in REALTIME_KINDS]
    if len(body) != 1 or len(kinds) != 1:
        got = ", ".join(sorted(body)) or "nothing"
        raise ProtocolError(INVALID, f"realtimeInput must carry exactly one input; got {got}")
    return kinds[0]


def decode_audio(blob: Any, where: str) -> tuple[bytes, int]:
    """PCM bytes and sample rate from an audio Blob (either base64 alphabet)."""
    blob = _obj(blob, where)
    mime = blob.get("mimeType")
    if not isinstance(mime, str) or not mime.startswith("audio/pcm"):
        raise ProtocolError(INVALID, f"{where}.mimeType: expected {MIC_MIME}, "
                                     f"got {mime!r}")
    m = re.search(r"rate=(\d+)", mime)
    rate = int(m.group(1)) if m else MIC_RATE
    if not 8000 <= rate <= 48000:
        raise ProtocolError(INVALID, f"{where}.mimeType: unsupported rate {rate}")
    try:
        pcm = b64decode_any(blob.get("data", ""))
    except ValueError as exc:
        raise ProtocolError(INVALID, f"Invalid value at '{where}.data' (TYPE_BYTES), "
                                     f"{exc}") from None
    return pcm, rate


def check_client_content(body: Any) -> bool:
    """Validate `clientContent`; returns whether it completes the user's turn."""
    body = _obj(body, "clientContent")
    turns = body.get("turns", [])
    if not isinstance(turns, list):
        raise ProtocolError(INVALID, "clientContent.turns: expected a list")
    for i, turn in enumerate(turns):
        turn = _obj(turn, f"clientContent.turns[{i}]")
        role = turn.get("role", "user")
        if role not in ("user", "model"):
            raise ProtocolError(INVALID, f"clientContent.turns[{i}].role: expected user or "
                                         f"model, got {role!r}")
        if not isinstance(turn.get("parts", []), list):
            raise ProtocolError(INVALID, f"clientContent.turns[{i}].parts: expected a list")
    return bool(body.get("turnComplete", False))


def check_tool_response(body: Any, profile: ModelProfile, model: str) -> int:
    """Validate `toolResponse`; returns how many function responses it carries."""
    responses = _obj(body, "toolResponse").get("functionResponses") or []
    if not isinstance(responses, list):
        raise ProtocolError(INVALID, "toolResponse.functionResponses: expected a list")
    for i, resp in enumerate(responses):
        where = f"toolResponse.functionResponses[{i}]"
        resp = _obj(resp, where)
        if not resp.get("id"):
            raise ProtocolError(INVALID, f"{where}.id is required")
        if "scheduling" in resp:
            if not profile.tool_scheduling:
                raise _unsupported(f"{where}.scheduling", model)
            _enum(resp["scheduling"], SCHEDULING, f"{where}.scheduling")
    return len(responses)
