"""What each wake engine ships and which model files it takes: names only, no engine
imported, so a config can be checked on a box without the optional engines."""

from __future__ import annotations

from pathlib import Path

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


def is_model_file(spec: str) -> bool:
    return "/" in spec or spec.endswith(tuple(MODEL_SUFFIX.values()))


def keyword_id(spec: str) -> str:
    """The name a keyword goes by in status, events and `[wake.cutoffs]`: a built-in
    keyword's own name, or a model file's stem (/etc/pivox/stop.json -> "stop")."""
    return Path(spec).stem if is_model_file(spec) else spec


def check_keyword(engine: str, spec: str) -> str | None:
    """Why `spec` cannot be a keyword of `engine`, or None if it can."""
    if is_model_file(spec):
        suffix = MODEL_SUFFIX[engine]
        if not spec.endswith(suffix):
            return f"a {suffix} model file for the {engine} engine"
        if not Path(spec).is_file():
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
