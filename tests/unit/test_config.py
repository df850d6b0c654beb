"""Config: a bad file names the file, the key and what was expected; exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox import config
from pivox.cli import main


def test_defaults_are_the_newest_model_and_okay_nabu() -> None:
    cfg = config.parse("")
    assert cfg.link.model == "gemini-3.8-live"
    assert cfg.wake.keyword == "okay_nabu" and cfg.wake.engine == "micro"
    assert cfg.audio.frame_ms == 20 and cfg.audio.preroll_ms >= 300


def test_rig_keys_parse_into_frozen_dataclasses() -> None:
    cfg = config.parse("""
[audio.capture]
device = "hw:2,0"
rate = 48000
channels = 4
[audio.playback]
device = "plughw:1,0"
rate = 48000
[wake]
engine = "micro"
keyword = "hey_jarvis"
[link]
url = "ws://127.0.0.1:9/x"
model = "gemini-3.1-flash-live-preview"
api_key_env = "MY_KEY"
thinking_level = "MINIMAL"
[control]
socket = "/tmp/pivox.sock"
""")
    assert (cfg.audio.capture.device, cfg.audio.capture.rate, cfg.audio.capture.channels) == (
        "hw:2,0", 48000, 4)
    assert cfg.audio.playback.device == "plughw:1,0"
    assert cfg.wake.keyword == "hey_jarvis" and cfg.link.api_key_env == "MY_KEY"
    assert cfg.control.socket == "/tmp/pivox.sock"
    with pytest.raises(AttributeError):
        cfg.link.url = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('[link]\nurll = "ws://x"', "link.urll", "known keys"),
    ("[audio.capture]\nrate = 12345", "audio.capture.rate", "16000, 44100, 48000"),
    ('[audio.capture]\nchannels = "2"', "audio.capture.channels", "from 1 to 8"),
    ("[audio.capture]\nchannels = 9", "audio.capture.channels", "from 1 to 8"),
    ("[audio]\npreroll_ms = 100", "audio.preroll_ms", "300"),
    ("[wake]\nkeyword = \"hey_siri\"", "wake.keyword", "okay_nabu"),
    ("[wake]\nkeyword = \"hey_rhasspy\"", "wake.keyword", "micro engine ships"),
    ("[wake]\nengine = \"openwakeword\"\nkeyword = \"/no/such.tflite\"", "wake.keyword",
     "model file that exists"),
    ("[wake]\nkeyword = \"/etc/pivox/word.ppn\"", "wake.keyword", ".json model file"),
    ("[wake]\nkeywords = [\"alexa\", \"computer\"]", "wake.keywords[1]", "ships"),
    ("[wake]\nstop_keyword = \"okay_nabu\"", "wake.stop_keyword", "not also a wake word"),
    ("[wake.cutoffs]\nalexa = 0.5", "wake.cutoffs.alexa", "configured keywords"),
    ("[wake.cutoffs]\nokay_nabu = 1", "wake.cutoffs", "0.01 to 0.99"),
    ("[wake]\nengine = \"snowboy\"", "wake.engine", "micro, openwakeword, porcupine"),
    ("[wake]\naccess_key = \"abc\"", "wake.access_key", "known keys"),
    ("[link]\nurl = \"http://x\"", "link.url", "ws://"),
    ("[link]\nthinking_level = \"LOW\"", "link.thinking_level", "gemini-3.8-live"),
    ("[link]\nmodel = \"gemini-3.1-flash-live-preview\"\nthinking_budget = 100",
     "link.thinking_budget", "does not support"),
    ("audio = 3", "audio", "a table"),
    ("[audio.playback]\nvolume = true", "audio.playback.volume", "0.0 to 1.0"),
    ("[leds]\npins = [17, 40]", "leds.pins", "BCM"),
    ('[leds]\nkind = "rgb"\npins = [17, 27]', "leds.pins", "exactly 3"),
])
def test_bad_values_name_file_key_and_expectation(text: str, key: str, expected: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(text, "/etc/pivox/pivox.toml")
    msg = str(err.value)
    assert msg.startswith("/etc/pivox/pivox.toml: ") and key in msg and expected in msg


def test_unknown_model_warns_and_uses_newest_profile() -> None:
    cfg = config.parse('[link]\nmodel = "gemini-9-live"')
    assert any("gemini-9-live" in w for w in cfg.warnings)


def test_config_check_exits_2_naming_the_key(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "pivox.toml"
    bad.write_text('[link]\nurll = "ws://127.0.0.1:1"\n')
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "link.urll" in err
    good = tmp_path / "good.toml"
    good.write_text('[link]\nurl = "ws://127.0.0.1:1/x"\n')
    assert main(["config", "check", str(good)]) == 0


def test_run_with_bad_config_exits_2_before_touching_devices(tmp_path: Path) -> None:
    bad = tmp_path / "pivox.toml"
    bad.write_text("[audio.capture]\nrate = 8000\n")
    proc = subprocess.run([sys.executable, "-m", "pivox", "run", "--config", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "audio.capture.rate" in proc.stderr and str(bad) in proc.stderr


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="readable file"):
        config.load(tmp_path / "nope.toml")


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_config_error(text: str) -> None:
    try:
        config.parse(text, "f.toml")
    except config.ConfigError as exc:
        assert str(exc).startswith("f.toml: ")


def test_plain_ws_to_a_remote_host_needs_explicit_consent() -> None:
    with pytest.raises(config.ConfigError, match="allow_insecure"):
        config.parse('[link]\nurl = "ws://speaker-server.lan/x"')
    cfg = config.parse('[link]\nurl = "ws://speaker-server.lan/x"\nallow_insecure = true')
    assert cfg.link.allow_insecure


def test_wake_words_stop_word_and_per_keyword_cutoffs() -> None:
    cfg = config.parse('[wake]\nengine = "porcupine"\nkeyword = "computer"\n'
                       'keywords = ["jarvis", "computer"]\nstop_keyword = "terminator"\n'
                       '[wake.cutoffs]\njarvis = 0.7\n')
    assert cfg.wake.wake_keywords == ("computer", "jarvis")
    assert cfg.wake.stop_keywords == ("terminator",)
    assert cfg.wake.cutoffs == {"jarvis": 0.7}
