"""What the capture thread needs of a wake engine, and what each engine ships: names only.

The interface (`WakeEngine`) and the keyword catalogue live here, in the pure core, so
that audio/ (which runs an engine) and config (which checks `[wake]`) depend on neither
wake/ nor any engine package: a config can be checked on a box without the optional
engines, and wake/ implements this interface rather than the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Protocol

ENGINES = ("micro", "openwakeword", "porcupine")
DEFAULT_ENGINE = "micro"
DEFAULT_KEYWORD = "okay_nabu"

BUILTIN: dict[str, tuple[str, ...]] = {
    "micro": ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa"),
    "openwakeword": ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy"),
    # pvporcupine.KEYWORDS, spelled with underscores for TOML (tests keep the two in step)
    "porcupine": ("alexa", "americano", "blueberry", "bumblebee", "computer", "grapefruit",
                  "grasshopper", "hey_barista", "hey_google", "hey_siri", "jarvis",
                  "ok_google", "pico_clock", "picovoice", "porcupine", "smart_mirror",
                  "snowboy", "terminator", "view_glass"),
}

# A custom keyword is a model file: microWakeWord's JSON manifest (naming its .tflite),
# an openWakeWord .tflite, or a Porcupine .ppn.
MODEL_SUFFIX = {"micro": ".json", "openwakeword": ".tflite", "porcupine": ".ppn"}


class WakeEngine(Protocol):
    """Fed 16 kHz s16le mono in frames of any size; says when it heard a keyword.

    Runs in the capture thread: `process` must be cheap and never block.
    """

    name: str
    keywords: tuple[str, ...]  # wake words: heard whenever the microphone is live
    stop_keywords: tuple[str, ...]  # heard only while `stop_armed` (the speaker talks)
    stop_armed: bool
    fallback_reason: str  # why the configured engine is not the one running, or ""

    def process(self, pcm: bytes) -> str | None:
        """Feed audio; return the keyword detected in it, or None."""
        ...

    def reset(self) -> None:
        """Forget buffered audio and probabilities (after a mute)."""
        ...

    def lag_s(self, keyword: str) -> tuple[float, float]:
        """(earliest, latest) seconds between the keyword's end and its detection: the
        capture thread starts the model's audio after the keyword with it."""
        ...


def is_model_file(spec: str) -> bool:
    return "/" in spec or spec.endswith(tuple(MODEL_SUFFIX.values()))


def keyword_id(spec: str) -> str:
    """The name a keyword goes by in status, events and `[wake.cutoffs]`: a built-in
    keyword's own name, or a model file's stem (/etc/pivox/stop.json -> "stop")."""
    return PurePath(spec).stem if is_model_file(spec) else spec


def check_keyword(engine: str, spec: str, is_file: Callable[[str], bool]) -> str | None:
    """Why `spec` cannot be a keyword of `engine`, or None if it can.

    `is_file` says whether a model file exists (the caller's I/O: config passes a
    filesystem check)."""
    if is_model_file(spec):
        suffix = MODEL_SUFFIX[engine]
        if not spec.endswith(suffix):
            return f"a {suffix} model file for the {engine} engine"
        if not is_file(spec):
            return f"a {suffix} model file that exists"
        return None
    if spec not in BUILTIN[engine]:
        return (f"a keyword the {engine} engine ships ({', '.join(BUILTIN[engine])}) or a "
                f"path to a {MODEL_SUFFIX[engine]} model file")
    return None


def builtin(engine: str, spec: str) -> str | None:
    """`spec` if it names a keyword `engine` ships, None if it is a model file; raises
    ValueError naming the choices otherwise."""
    if is_model_file(spec):
        return None
    if spec not in BUILTIN[engine]:
        raise ValueError(f"{engine} wake engine has no keyword {spec!r}; choose one of "
                         f"{', '.join(BUILTIN[engine])} or a {MODEL_SUFFIX[engine]} model file")
    return spec
