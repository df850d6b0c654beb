"""`pivox diag` and scripts/collect-diagnostics, run as a user would run them.

Against a config on recorded audio and the reference server on loopback: the JSON shape,
the wake and endpoint checks passing, the endpoint failing with a hint when nothing
listens (exit 1), real ALSA devices metered and played through the `file` plugin,
libasound's own errors in the check that caused them (never on stderr), mock LEDs, and the
API key never printed nor bundled.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import alsaaudio
import numpy as np
import pytest
from live import free_port, make_config

from pivox.audio.alsa import alsa_errors
from pivox.diag import bundle
from pivox.reference.server import ReferenceServer

ROOT = Path(__file__).resolve().parents[2]
PIVOX = Path(sys.executable).with_name("pivox")
SECRET = "sk-diag-test-3c0ffee5ecret"  # as $GEMINI_API_KEY
FILE_SECRET = "AIzaSyD-filesecret-0123456789abcdefghijk"  # in api_key_file
URL_SECRET = "urlsecret42"  # a key=... in the URL
CHECKS = ["system", "config", "api key", "capture", "playback", "leds", "wake", "endpoint",
          "clock", "service", "daemon", "journal"]


class ServerThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = ReferenceServer()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


@pytest.fixture
def server():
    s = ServerThread()
    yield s.server
    s.stop()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY",
                        "GEMINI_API_KEY", "GOOGLE_API_KEY", "JOURNAL_STREAM")}
    env.update(extra)
    return env


def pivox_diag(config: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pivox", "diag", "--config", str(config),
                           *args], env=env or clean_env(GEMINI_API_KEY=SECRET),
                          capture_output=True, text=True, timeout=120)


def by_name(out: str) -> dict[str, dict[str, Any]]:
    doc = json.loads(out)
    assert list(doc) == ["checks"]
    return {c["name"]: c for c in doc["checks"]}


def test_json_shape_and_checks_against_the_reference_server(tmp_path: Path, server) -> None:
    make_config(tmp_path, server.url)
    proc = pivox_diag(tmp_path / "pivox.toml", "--json")
    assert SECRET not in proc.stdout + proc.stderr
    checks = by_name(proc.stdout)
    assert list(checks) == CHECKS
    for c in checks.values():
        assert set(c) == {"name", "status", "detail", "hint"}
        assert c["status"] in ("pass", "warn", "fail")
        assert c["detail"]
        if c["status"] != "pass":
            assert c["hint"], c  # every problem says what to try next
    for name in ("config", "capture", "playback", "leds", "wake", "endpoint"):
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["api key"] == {"name": "api key", "status": "pass", "hint": "",
                                 "detail": "set (from $GEMINI_API_KEY)"}
    assert "okay_nabu" in checks["wake"]["detail"]
    assert "recording" in checks["capture"]["detail"] and "dBFS" in checks["capture"]["detail"]
    endpoint = checks["endpoint"]["detail"]
    for step in ("DNS", "TCP", "WebSocket", "setup answered"):
        assert step in endpoint
    assert checks["daemon"]["status"] == "warn" and "not running" in checks["daemon"]["detail"]
    assert server.stats.setups >= 1
    assert proc.returncode == (1 if any(c["status"] == "fail" for c in checks.values())
                               else 0)
    assert proc.returncode == 0, proc.stdout

    text = pivox_diag(tmp_path / "pivox.toml")
    assert text.returncode == 0
    assert re.search(r"^PASS +wake +micro heard okay_nabu", text.stdout, re.M), text.stdout
    assert SECRET not in text.stdout + text.stderr


def test_endpoint_fails_with_a_hint_when_nothing_listens(tmp_path: Path) -> None:
    make_config(tmp_path, f"ws://127.0.0.1:{free_port()}/ws/nothing")
    proc = pivox_diag(tmp_path / "pivox.toml", "--json")
    assert proc.returncode == 1
    endpoint = by_name(proc.stdout)["endpoint"]
    assert endpoint["status"] == "fail"
    assert "refused" in endpoint["detail"] and "DNS" in endpoint["detail"]
    assert "nothing listens" in endpoint["hint"]
    text = pivox_diag(tmp_path / "pivox.toml")
    assert text.returncode == 1
    assert re.search(r"^FAIL +endpoint ", text.stdout, re.M)
    assert re.search(r"^ +try: nothing listens", text.stdout, re.M)
    assert SECRET not in proc.stdout + text.stdout + proc.stderr + text.stderr


def test_a_bad_config_fails_and_the_rest_still_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[link]\nurll = 'x'\n")
    proc = pivox_diag(bad, "--json", "--no-sound")
    assert proc.returncode == 1
    checks = by_name(proc.stdout)
    assert list(checks) == CHECKS
    assert checks["config"]["status"] == "fail" and "link.urll" in checks["config"]["detail"]
    assert "pivox config check" in checks["config"]["hint"]
    assert checks["wake"]["status"] == "pass"


def test_alsa_microphone_is_metered_per_channel_and_the_speaker_plays_a_tone(
        tmp_path: Path, server) -> None:
    """Real libasound through the `file` plugin: channel 0 a -6 dBFS sine, channel 1 a
    full-scale square wave (clipping); the test tone lands in the speaker's file."""
    rate, n = 16000, 16000 * 2
    t = np.arange(n) / rate
    ch0 = np.round(0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    ch1 = np.where(np.sin(2 * np.pi * 250 * t) >= 0, 32767, -32768).astype("<i2")
    mic = tmp_path / "mic.raw"
    mic.write_bytes(np.stack([ch0, ch1], axis=1).tobytes())
    spk = tmp_path / "spk.raw"
    rc = tmp_path / "asoundrc"
    rc.write_text(
        f'pcm.diag_mic {{\n type file\n slave.pcm "null"\n infile "{mic}"\n'
        f' file "/dev/null"\n format "raw"\n}}\n'
        f'pcm.diag_spk {{\n type file\n slave.pcm "null"\n file "{spk}"\n format "raw"\n}}\n')
    config = tmp_path / "pivox.toml"
    config.write_text(f"""
[audio.capture]
device = "diag_mic"
channels = 2
[audio.playback]
device = "diag_spk"
rate = 48000
volume = 0.8
[link]
url = "{server.url}"
[control]
socket = "{tmp_path / 'control.sock'}"
""")
    env = clean_env(ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{rc}")
    proc = pivox_diag(config, "--json", env=env)
    checks = by_name(proc.stdout)
    cap = checks["capture"]
    assert cap["status"] == "warn", cap  # clipping is worth a warning
    assert "16000 Hz, 2 ch, S16_LE" in cap["detail"]
    assert "ch0 -9.0 dBFS (peak -6.0)" in cap["detail"], cap["detail"]
    assert "ch1 0.0 dBFS (peak 0.0)" in cap["detail"], cap["detail"]
    clipped = int(cap["detail"].split("; ")[1].split()[0])
    assert clipped >= 8000  # the square wave's negative half sits at full scale
    assert "alsamixer" in cap["hint"]
    pb = checks["playback"]
    assert pb["status"] == "pass" and "tone" in pb["detail"], pb
    played = np.frombuffer(spk.read_bytes(), dtype="<i2").astype(np.float64)
    assert len(played) >= 48000 // 2
    spectrum = np.abs(np.fft.rfft(played))
    peak_hz = np.argmax(spectrum) * 48000 / len(played)
    assert abs(peak_hz - 660) < 10
    assert 0.15 < np.max(np.abs(played)) / 32768 < 0.25  # 0.25 full scale x volume 0.8

    spk.unlink()
    quiet = by_name(pivox_diag(config, "--json", "--no-sound", env=env).stdout)
    assert quiet["playback"]["status"] == "pass" and "no tone" in quiet["playback"]["detail"]
    assert not spk.exists() or np.count_nonzero(np.frombuffer(spk.read_bytes(), "<i2")) == 0


def test_missing_alsa_device_fails_with_a_hint(tmp_path: Path, server) -> None:
    config = tmp_path / "pivox.toml"
    config.write_text(f"""
[audio.capture]
device = "no_such_pcm"
[audio.playback]
device = "no_such_pcm"
[link]
url = "{server.url}"
[control]
socket = "{tmp_path / 'control.sock'}"
""")
    proc = pivox_diag(config, "--json", "--no-sound")
    assert proc.returncode == 1
    checks = by_name(proc.stdout)
    for name in ("capture", "playback"):
        assert checks[name]["status"] == "fail" and "no_such_pcm" in checks[name]["detail"]
        assert checks[name]["hint"]


def test_libasound_errors_land_in_the_check_and_not_on_stderr(tmp_path: Path,
                                                               server) -> None:
    """The default device on a card that is not there: libasound would print eight lines
    per open to stderr; the capture and playback checks report them instead."""
    rc = tmp_path / "asoundrc"
    rc.write_text("defaults.pcm.card 31\ndefaults.ctl.card 31\n")  # no machine has card 31
    config = tmp_path / "pivox.toml"
    config.write_text(f"""
[link]
url = "{server.url}"
[control]
socket = "{tmp_path / 'control.sock'}"
""")
    env = clean_env(ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{rc}")
    proc = pivox_diag(config, "--json", "--no-sound", env=env)
    assert "ALSA lib" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    checks = by_name(proc.stdout)
    for name in ("capture", "playback"):
        check = checks[name]
        assert check["status"] == "fail" and check["detail"].startswith("default ("), check
        assert "libasound: parse_card: cannot find card" in check["detail"], check
        assert "snd_pcm_open_noupdate: Unknown PCM" in check["detail"], check
        assert "ALSA lib" not in check["detail"] and check["hint"]
    text = pivox_diag(config, "--no-sound", env=env)
    assert "ALSA lib" not in text.stderr, text.stderr
    assert re.search(r"^FAIL +capture +default .*libasound: parse_card", text.stdout, re.M)


def test_alsa_errors_collects_on_its_thread_inside_the_block(capfd) -> None:
    def open_missing() -> None:
        with pytest.raises(alsaaudio.ALSAAudioError):
            alsaaudio.PCM(alsaaudio.PCM_CAPTURE, device="pivox_no_such_pcm")

    with alsa_errors() as said:
        open_missing()
        with alsa_errors() as inner:  # nested: the inner block has its own, and the
            open_missing()            # enclosing one hears it too (a check around a device)
        open_missing()
    assert said == ["snd_pcm_open_noupdate: Unknown PCM ?"] * 3
    assert inner == ["snd_pcm_open_noupdate: Unknown PCM ?"]
    assert "ALSA lib" not in capfd.readouterr().err
    open_missing()  # after the block, libasound prints as before
    assert "Unknown PCM pivox_no_such_pcm" in capfd.readouterr().err

    with alsa_errors() as said:  # another thread's call is not this block's
        other = threading.Thread(target=open_missing)
        other.start()
        other.join()
    assert said == [] and "ALSA lib" not in capfd.readouterr().err


def test_leds_are_lit_on_mock_pins(tmp_path: Path, server) -> None:
    make_config(tmp_path, server.url, extra="[leds]\nkind = \"gpio\"\npins = [17, 27]\n")
    env = clean_env(GPIOZERO_PIN_FACTORY="mock", GPIOZERO_MOCK_PIN_CLASS="mockpwmpin")
    leds = by_name(pivox_diag(tmp_path / "pivox.toml", "--json", env=env).stdout)["leds"]
    assert leds["status"] == "pass", leds
    assert "gpio on pins [17, 27]" in leds["detail"] and "MockFactory" in leds["detail"]


def test_redacted_config_keeps_paths_and_drops_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "pivox.toml"
    cfg.write_text(f"""# my old key was {FILE_SECRET}
[link]
url = "ws://127.0.0.1:9/path?key={URL_SECRET}"
api_key_env = "GEMINI_API_KEY"
api_key_file = "/etc/pivox/credentials/gemini_api_key"
access_token = "tok-123"
""")
    out = bundle.redacted_config(str(cfg))
    assert FILE_SECRET not in out and URL_SECRET not in out and "tok-123" not in out
    assert 'api_key_file = "/etc/pivox/credentials/gemini_api_key"' in out
    assert 'api_key_env = "GEMINI_API_KEY"' in out
    assert 'access_token = "<redacted>"' in out


def test_collect_diagnostics_bundles_everything_but_the_key(tmp_path: Path, server) -> None:
    key_file = tmp_path / "gemini_api_key"
    key_file.write_text(FILE_SECRET + "\n")
    key_file.chmod(0o600)
    url = f"{server.url}?key={URL_SECRET}"
    cfg = make_config(tmp_path, url, link=f'api_key_file = "{key_file}"')
    config = Path(cfg.source)
    config.write_text(f"# the key used to be {FILE_SECRET}\n" + config.read_text())
    env = clean_env(GEMINI_API_KEY=SECRET, PIVOX=str(PIVOX), PIVOX_LOG="stderr")
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen([sys.executable, "-m", "pivox", "run", "--config",
                                   str(config)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        sock = tmp_path / "control.sock"
        end = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < end:
            assert daemon.poll() is None, log.read_text()
            time.sleep(0.05)
        bundle = tmp_path / "bundle.tar.gz"
        proc = subprocess.run([str(ROOT / "scripts" / "collect-diagnostics"), "--config",
                               str(config), "--out", str(bundle)], env=env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(bundle)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)

    assert bundle.stat().st_mode & 0o077 == 0
    with tarfile.open(bundle) as tar:
        files = {Path(m.name).name: tar.extractfile(m).read().decode(errors="replace")
                 for m in tar.getmembers() if m.isfile()}
    assert {"diag.json", "status.json", "pivox.toml", "journal.txt", "system.txt"} <= set(files)
    status = json.loads(files["status.json"])
    assert status["state"] and "uptime_s" in status
    checks = by_name(files["diag.json"])
    assert checks["daemon"]["status"] == "pass", checks["daemon"]
    assert checks["api key"]["detail"] == f"set (from api_key_file {key_file})"
    assert f'api_key_file = "{key_file}"' in files["pivox.toml"]
    for name, text in files.items():
        for secret in (SECRET, FILE_SECRET, URL_SECRET):
            assert secret not in text, f"{secret} in {name}"
