"""Per-model setup rules for the Gemini Live models.

The wire is the same for every Live model; what `setup` may carry is not, and a field a
model does not support is answered with close code 1007. One small profile per model family
says what is allowed; the config checks against it, the codec builds `setup` through it,
and the reference server enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelProfile:
    family: str
    thinking: str | None  # "thinkingLevel", "thinkingBudget" or None (omit thinkingConfig)
    proactivity: bool  # may send proactivity.proactiveAudio
    affective_dialog: bool  # may send enableAffectiveDialog
    async_tools: bool  # function declarations may carry behavior NON_BLOCKING
    tool_scheduling: bool  # toolResponse may carry scheduling
    interaction_status: bool  # server may report interactionStatus IN_PROGRESS / IDLE
    note: str
    search: bool = True  # setup.tools may carry googleSearch (Search grounding)


GEMINI_38 = ModelProfile(
    family="gemini-3.8-live",
    thinking=None,
    proactivity=False,
    affective_dialog=False,
    async_tools=True,
    tool_scheduling=True,
    interaction_status=True,
    note="stable; no thinkingConfig; async tools; proactive audio always on",
)
GEMINI_31 = ModelProfile(
    family="gemini-3.1-flash-live-preview",
    thinking="thinkingLevel",
    proactivity=False,
    affective_dialog=False,
    async_tools=False,
    tool_scheduling=False,
    interaction_status=False,
    note="legacy preview; thinkingLevel; synchronous tools only",
)
GEMINI_25 = ModelProfile(
    family="gemini-2.5-flash-native-audio-preview-12-2025",
    thinking="thinkingBudget",
    proactivity=True,
    affective_dialog=True,
    async_tools=True,
    tool_scheduling=True,
    interaction_status=False,
    note="older preview; thinkingBudget; affective dialog and proactivity",
)

DEFAULT_MODEL = "gemini-3.8-live"
PROFILES: dict[str, ModelProfile] = {
    "gemini-3.8-live": GEMINI_38,
    "gemini-3.8-live-extended-thinking": GEMINI_38,
    "gemini-3.1-flash-live-preview": GEMINI_31,
    "gemini-2.5-flash-native-audio-preview-12-2025": GEMINI_25,
}
THINKING_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")


def bare_name(model: str) -> str:
    return model.removeprefix("models/")


def profile_for(model: str) -> tuple[ModelProfile, bool]:
    """The profile for `model`, and whether it is known. Unknown names get the newest."""
    prof = PROFILES.get(bare_name(model))
    if prof is not None:
        return prof, True
    return PROFILES[DEFAULT_MODEL], False
