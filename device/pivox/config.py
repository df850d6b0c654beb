"""TOML text in, frozen dataclasses out, or one error naming the file, key and expectation.

Secrets never live in the TOML: `[link] api_key_env` names an environment variable and
`[link] api_key_file` a file (fit for systemd's LoadCredential=). The key itself is read
only by the session adapter, at connect time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import types
import typing
import urllib.parse
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivox.core import wakeword
from pivox.core.machine import Timings
from pivox.core.models import DEFAULT_MODEL, THINKING_LEVELS, profile_for
from pivox.home.settings import MqttConfig, plain_problem
from pivox.home.state import StateConfig

DEFAULT_PATH = Path("/etc/pivox/pivox.toml")
GEMINI_URL = ("wss://generativelanguage.googleapis.com/ws/"
              "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
SAMPLE_FORMATS = ("S16_LE", "S32_LE", "S24_3LE")


class ConfigError(ValueError):
    """A config problem, phrased for the person editing the file."""

    def __init__(self, file: str, key: str, expected: str, got: object = dataclasses.MISSING):
        self.file, self.key, self.expected = file, key, expected
        msg = f"{file}: {key}: expected {expected}"
        if got is not dataclasses.MISSING:
            msg += f", got {got!r}"
        super().__init__(msg)


def _opt(default: Any, expected: str = "", check: Any = None, **kw: Any) -> Any:
    return field(default=default, metadata={"expected": expected, "check": check}, **kw)


def _range(lo: float, hi: float) -> Any:
    return lambda v: lo <= v <= hi


def _one_of(*choices: Any) -> Any:
    return lambda v: v in choices


@dataclass(frozen=True)
class CaptureConfig:
    device: str = _opt("default", "an ALSA PCM name, or wav:PATH for a recorded file")
    rate: int = _opt(16000, "one of 16000, 44100, 48000", _one_of(16000, 44100, 48000))
    channels: int = _opt(1, "an integer from 1 to 8", _range(1, 8))
    format: str = _opt("S16_LE", f"one of {', '.join(SAMPLE_FORMATS)}", _one_of(*SAMPLE_FORMATS))
    channel: int = _opt(-1, "a channel index, or -1 to mix all channels", _range(-1, 7))
    period_ms: int = _opt(60, "10, 20, 30, 40 or 60 (ms)", _one_of(10, 20, 30, 40, 60))
    realtime: bool = _opt(True, "true or false (wav: sources only: pace at real time)")


@dataclass(frozen=True)
class PlaybackConfig:
    device: str = _opt("default", "an ALSA PCM name, or wav:PATH to record what is played")
    rate: int = _opt(48000, "one of 16000, 22050, 24000, 44100, 48000",
                     _one_of(16000, 22050, 24000, 44100, 48000))
    channels: int = _opt(1, "1 or 2", _range(1, 2))
    period_ms: int = _opt(40, "10, 20, 30 or 40 (ms)", _one_of(10, 20, 30, 40))
    volume: float = _opt(0.8, "a number from 0.0 to 1.0", _range(0.0, 1.0))
    jitter_ms: int = _opt(60, "an integer from 0 to 500 (ms)", _range(0, 500))


@dataclass(frozen=True)
class EchoConfig:
    enabled: bool = _opt(True, "true or false (cancel the speaker's echo in the microphone)")
    tail_ms: int = _opt(200, "an integer from 50 to 500 (ms of room echo to model)",
                        _range(50, 500))
    denoise: bool = _opt(False, "true or false (speex noise suppression)")
    agc: bool = _opt(False, "true or false (speex automatic gain)")


@dataclass(frozen=True)
class AudioConfig:
    frame_ms: int = _opt(20, "10, 20 or 30 (ms)", _one_of(10, 20, 30))
    preroll_ms: int = _opt(500, "an integer from 300 to 5000 (ms)", _range(300, 5000))
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    playback: PlaybackConfig = field(default_factory=PlaybackConfig)
    echo: EchoConfig = field(default_factory=EchoConfig)


@dataclass(frozen=True)
class WakeConfig:
    """Wake words are heard whenever the microphone is live; a stop word only while the
    speaker talks (it ends the reply). A keyword is one the engine ships or a model file;
    `[wake.cutoffs]` sets a cutoff per keyword (by name, or by a model file's stem)."""

    engine: str = _opt("micro", f"one of {', '.join(wakeword.ENGINES)}",
                       _one_of(*wakeword.ENGINES))
    keyword: str = _opt("okay_nabu", "a keyword the engine ships or a model file path")
    keywords: tuple[str, ...] = _opt((), "a list of further wake words")
    stop_keyword: str = _opt("", "empty, or a keyword heard only while speaking")
    cutoff: float = _opt(0.0, "0 (the model's own) or a probability from 0.01 to 0.99",
                         lambda v: v == 0 or 0.01 <= v <= 0.99)
    cutoffs: dict[str, float] = field(
        default_factory=dict,
        metadata={"expected": "a probability from 0.01 to 0.99 per keyword",
                  "check": lambda d: all(0.01 <= v <= 0.99 for v in d.values())})
    refractory_s: float = _opt(2.0, "a number of seconds from 0 to 10", _range(0, 10))
    access_key_env: str = _opt("PICOVOICE_ACCESS_KEY",
                               "an environment variable name (porcupine's AccessKey)")
    access_key_file: str = _opt("", "a path to a file holding porcupine's AccessKey, or empty")

    @property
    def wake_keywords(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.keyword, *self.keywords)))

    @property
    def stop_keywords(self) -> tuple[str, ...]:
        return (self.stop_keyword,) if self.stop_keyword else ()


@dataclass(frozen=True)
class LinkConfig:
    url: str = _opt(GEMINI_URL, "a ws:// or wss:// URL",
                    lambda v: v.startswith(("ws://", "wss://")))
    model: str = _opt(DEFAULT_MODEL, "a Gemini Live model name", lambda v: bool(v.strip()))
    api_key_env: str = _opt("GEMINI_API_KEY", "an environment variable name")
    api_key_file: str = _opt("", "a path to a file holding the API key, or empty")
    auth: str = _opt("key", "\"key\" (x-goog-api-key) or \"token\" (an ephemeral token)",
                     _one_of("key", "token"))
    voice: str = _opt("Kore", "a prebuilt voice name")
    language: str = _opt("", "a BCP-47 language code, or empty for automatic")
    system_instruction: str = _opt(
        "You are a helpful smart speaker in a home. Answer briefly, in one or two spoken "
        "sentences.", "text")
    silence_ms: int = _opt(500, "an integer from 100 to 3000 (ms)", _range(100, 3000))
    thinking_level: str = _opt("", f"empty or one of {', '.join(THINKING_LEVELS)}",
                               lambda v: v == "" or v in THINKING_LEVELS)
    thinking_budget: int = _opt(-1, "-1 (unset) or an integer from 0 to 32768",
                                _range(-1, 32768))
    proactive_audio: str = _opt("", "empty, \"on\" or \"off\"", _one_of("", "on", "off"))
    affective_dialog: str = _opt("", "empty, \"on\" or \"off\"", _one_of("", "on", "off"))
    transcripts: bool = _opt(False, "true or false (log what was said to the journal)")
    tools: bool = _opt(True, "true or false (let the model set the volume and stop)")
    search: bool = _opt(True, "true or false (Google Search grounding: current answers)")
    context_compression: bool = _opt(True, "true or false")
    connect_timeout_s: float = _opt(10.0, "a number of seconds from 1 to 60", _range(1, 60))
    keepalive_s: float = _opt(20.0, "seconds from 0.1 to 120 between websocket pings (their "
                              "answers are never required)", _range(0.1, 120))
    liveness_s: float = _opt(8.0, "seconds from 2 to 60 without a frame, while a reply is "
                             "expected, before the link counts as dead", _range(2, 60))
    send_buffer_ms: int = _opt(3000, "an integer from 200 to 30000 (ms)", _range(200, 30000))
    probe_s: float = _opt(3.0, "seconds from 0 (never) to 60 between cheap TCP probes of the "
                          "endpoint while the link is down", _range(0, 60))
    reconnect_spread_s: float = _opt(2.0, "seconds from 0 to 60 over which the first "
                                     "reconnect after a server's return is spread",
                                     _range(0, 60))
    allow_insecure: bool = _opt(False, "true or false (allow ws:// to a non-loopback host)")


@dataclass(frozen=True)
class ConversationConfig:
    """Who ends the user's turn ("server": Gemini's activity detection; "local": this
    device's speech detector, sending activityStart/End), after `link.silence_ms` either way."""

    no_speech_s: float = _opt(8.0, "seconds, 1 to 60", _range(1, 60))
    max_utterance_s: float = _opt(30.0, "seconds, 3 to 120", _range(3, 120))
    thinking_s: float = _opt(10.0, "seconds, 1 to 60", _range(1, 60))
    follow_up: str = _opt("question", "\"question\" (when the reply asks), \"always\" or "
                          "\"never\"", _one_of("question", "always", "never"))
    follow_up_s: float = _opt(6.0, "seconds, 1 to 30", _range(1, 30))
    keep_warm_s: float = _opt(60.0, "seconds, 0 to 600", _range(0, 600))
    duplex: str = _opt("auto", "\"auto\" (full duplex once the echo canceller has "
                       "converged), \"half\" or \"full\"", _one_of("auto", "half", "full"))
    turn_detection: str = _opt("server", "\"server\" or \"local\"", _one_of("server", "local"))
    start_sensitivity: str = _opt("high", "\"high\" or \"low\"", _one_of("high", "low"))
    end_sensitivity: str = _opt("high", "\"high\" or \"low\"", _one_of("high", "low"))

    def timings(self) -> Timings:
        return Timings(no_speech_s=self.no_speech_s, max_utterance_s=self.max_utterance_s,
                       thinking_s=self.thinking_s, follow_up=self.follow_up,
                       follow_up_s=self.follow_up_s, keep_warm_s=self.keep_warm_s)


@dataclass(frozen=True)
class HomeConfig:
    """Where the speaker is; the time itself comes from the get_local_time tool."""

    location: str = _opt("", "a place, e.g. \"Leeds, United Kingdom\", or empty")
    timezone: str = _opt("", "an IANA zone such as \"Europe/London\", or empty",
                         lambda v: v == "" or v in zoneinfo.available_timezones())
    units: str = _opt("metric", "\"metric\" or \"imperial\"", _one_of("metric", "imperial"))


@dataclass(frozen=True)
class LedConfig:
    kind: str = _opt("none", "one of none, gpio, rgb, apa102",
                     _one_of("none", "gpio", "rgb", "apa102"))
    pins: tuple[int, ...] = _opt((), "a list of BCM pin numbers",
                           lambda v: all(0 <= p <= 27 for p in v))
    active_high: bool = _opt(True, "true or false")
    count: int = _opt(12, "the number of APA102 pixels, 1 to 255", _range(1, 255))
    brightness: int = _opt(8, "APA102 brightness, 0 to 31", _range(0, 31))


def _pin(v: int) -> bool:
    return v == -1 or 0 <= v <= 27


@dataclass(frozen=True)
class ButtonConfig:
    talk: int = _opt(-1, "a BCM pin number, or -1 for no button", _pin)
    mute: int = _opt(-1, "a BCM pin number, or -1 for no button", _pin)
    volume_up: int = _opt(-1, "a BCM pin number, or -1 for no button", _pin)
    volume_down: int = _opt(-1, "a BCM pin number, or -1 for no button", _pin)
    long_press_s: float = _opt(3.0, "seconds from 1 to 10", _range(1, 10))

    def pins(self) -> dict[str, int]:
        return {name: pin for name, pin in (("talk", self.talk), ("mute", self.mute),
                                            ("volume_up", self.volume_up),
                                            ("volume_down", self.volume_down)) if pin >= 0}


@dataclass(frozen=True)
class ControlConfig:
    socket: str = _opt("/run/pivox/control.sock", "a filesystem path for the control socket")


@dataclass(frozen=True)
class LogConfig:
    level: str = _opt("info", "one of debug, info, warning, error",
                      _one_of("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    home: HomeConfig = field(default_factory=HomeConfig)
    leds: LedConfig = field(default_factory=LedConfig)
    buttons: ButtonConfig = field(default_factory=ButtonConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    state: StateConfig = field(default_factory=StateConfig)
    source: str = field(default="<defaults>", compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _convert(file: str, key: str, tp: Any, value: Any, expected: str) -> Any:
    want = expected or _TYPE_WORDS.get(tp, str(tp))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(file, key, want, value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, want, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value
        ):
            raise ConfigError(file, key, want, value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(file, key, want, value)
        return value
    if typing.get_origin(tp) is dict:
        inner = typing.get_args(tp)[1]
        if not isinstance(value, dict):
            raise ConfigError(file, key, "a table", value)
        return {k: _convert(file, f"{key}.{k}", inner, v, want) for k, v in value.items()}
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise ConfigError(file, key, want, value)
        return tuple(_convert(file, f"{key}[{i}]", inner, v, want) for i, v in enumerate(value))
    raise TypeError(f"unsupported config type {tp}")  # a bug in this module


def _section(cls: type, data: Any, file: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(file, prefix or "<top>", "a table", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.compare}
    for key in data:
        if key not in fields:
            name = f"{prefix}.{key}" if prefix else key
            raise ConfigError(file, name, f"one of the known keys ({', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        full = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = _section(tp, data[name], file, full)
            continue
        if isinstance(tp, types.UnionType):
            raise TypeError(f"unsupported config type {tp}")
        expected = f.metadata.get("expected", "")
        value = _convert(file, full, tp, data[name], expected)
        check = f.metadata.get("check")
        if check is not None and not check(value):
            raise ConfigError(file, full, expected, data[name])
        kwargs[name] = value
    return cls(**kwargs)


def parse(text: str, file: str = "<string>") -> Config:
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(file, "<syntax>", f"valid TOML ({str(exc)[:200]})") from None
    cfg = _section(Config, data, file, "")
    return _check_rules(dataclasses.replace(cfg, source=file), file)


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), "<file>", f"a readable file ({exc.strerror})") from None
    return parse(text, str(p))


def _check_rules(cfg: Config, file: str) -> Config:
    """Options the chosen model does not support are config errors, not a 1007 later."""
    link = cfg.link
    profile, known = profile_for(link.model)
    warnings = list(cfg.warnings)
    if not known:
        warnings.append(f"unknown model {link.model!r}: using the {profile.family} profile")
    rules = [
        ("link.thinking_level", link.thinking_level != "", profile.thinking == "thinkingLevel"),
        ("link.thinking_budget", link.thinking_budget != -1,
         profile.thinking == "thinkingBudget"),
        ("link.proactive_audio", link.proactive_audio != "", profile.proactivity),
        ("link.affective_dialog", link.affective_dialog != "", profile.affective_dialog),
    ]
    for key, is_set, allowed in rules:
        if is_set and not allowed:
            raise ConfigError(file, key, f"unset: model {link.model} does not support it")
    _check_wake(cfg.wake, file)
    if cfg.leds.kind == "rgb" and len(cfg.leds.pins) != 3:
        raise ConfigError(file, "leds.pins", "exactly 3 pins (red, green, blue) for kind "
                          "\"rgb\"", list(cfg.leds.pins))
    if cfg.leds.kind == "gpio" and not cfg.leds.pins:
        raise ConfigError(file, "leds.pins", "at least one pin for kind \"gpio\"", [])
    host = urllib.parse.urlsplit(link.url).hostname or ""
    if link.url.startswith("ws://") and not link.allow_insecure and not is_loopback(host):
        raise ConfigError(file, "link.url", "wss:// for a non-loopback host (or set "
                          "link.allow_insecure = true)", link.url)
    problem = plain_problem(cfg.mqtt, is_loopback)
    if problem:
        raise ConfigError(file, "mqtt.tls", problem, cfg.mqtt.tls)
    return dataclasses.replace(cfg, warnings=tuple(warnings))


def _check_wake(wake: WakeConfig, file: str) -> None:
    named = [("wake.keyword", wake.keyword)]
    named += [(f"wake.keywords[{i}]", k) for i, k in enumerate(wake.keywords)]
    if wake.stop_keyword:
        named.append(("wake.stop_keyword", wake.stop_keyword))
    for key, spec in named:
        problem = wakeword.check_keyword(wake.engine, spec, os.path.isfile)
        if problem:
            raise ConfigError(file, key, problem, spec)
    ids = {wakeword.keyword_id(spec) for _, spec in named}
    for kw in wake.cutoffs:
        if kw not in ids:
            raise ConfigError(file, f"wake.cutoffs.{kw}", f"one of the configured keywords "
                              f"({', '.join(sorted(ids))})")
    if wake.stop_keyword and wake.stop_keyword in wake.wake_keywords:
        raise ConfigError(file, "wake.stop_keyword", "a keyword that is not also a wake word",
                          wake.stop_keyword)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
