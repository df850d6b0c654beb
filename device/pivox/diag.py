"""`pivox diag`: the one command to run over SSH when a speaker misbehaves.

Each check says pass, warn or fail, what it saw, and the next thing to try. It works with
the daemon stopped (then the daemon check warns), never prints the API key (only whether
one is set, and where from), and exits 1 if any check failed.

Checks: config, api key, capture (a second of audio with a per-channel level meter),
playback (a short tone), LEDs, wake (the bundled recording), endpoint (DNS, TCP, TLS,
WebSocket handshake and setup, with times), clock, service, daemon (control socket) and
journal (recent errors).

`python -m pivox.diag --redact-config PATH` and `--scrub DIR` are the pieces
scripts/collect-diagnostics uses to keep secrets out of a support bundle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pivox import __version__
from pivox import config as config_mod

PASS, WARN, FAIL = "pass", "warn", "fail"
CREDENTIAL = Path("/etc/pivox/credentials/gemini_api_key")  # what the unit loads
SERVICE = "pivox"
CLIP = 32767 / 32768  # a sample this close to full scale counts as clipped
FLOOR_DB = -120.0
GOOGLE_KEY = re.compile(r"AIza[0-9A-Za-z_\-]{30,}")  # the shape of a Google API key
# key=... and access_token=... in URLs; stops at quotes so JSON and TOML stay valid.
SECRET_PARAMS = re.compile(r"((?:key|access_token)=)[^&\s\"'<>]+")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    hint: str = ""


@dataclass
class Context:
    cfg: config_mod.Config
    config_ok: bool
    no_sound: bool
    capture_s: float
    key: str | None = None
    key_source: str = ""
    daemon: dict[str, Any] | None = None  # its status, when it answered


# ------------------------------------------------------------------ helpers


def dbfs(value: float) -> float:
    if value <= 0:
        return FLOOR_DB
    return round(max(FLOOR_DB, 20 * math.log10(value)), 1) + 0.0  # never "-0.0"


def meter(x: np.ndarray) -> list[dict[str, float]]:
    """Per channel of `x` (frames, channels; floats in [-1, 1)): rms and peak in dBFS, and
    how many samples were at full scale."""
    out = []
    for c in range(x.shape[1]):
        col = x[:, c].astype(np.float64)
        rms = float(np.sqrt(np.mean(col * col))) if len(col) else 0.0
        peak = float(np.max(np.abs(col))) if len(col) else 0.0
        out.append({"rms_dbfs": dbfs(rms), "peak_dbfs": dbfs(peak),
                    "clipped": int(np.count_nonzero(np.abs(col) >= CLIP))})
    return out


def describe_levels(levels: list[dict[str, float]]) -> str:
    parts = []
    for i, lv in enumerate(levels):
        if lv["peak_dbfs"] <= FLOOR_DB:
            parts.append(f"ch{i} silent (all zero)")
        else:
            parts.append(f"ch{i} {lv['rms_dbfs']:.1f} dBFS (peak {lv['peak_dbfs']:.1f})")
    clipped = sum(int(lv["clipped"]) for lv in levels)
    return f"{', '.join(parts)}; {clipped} clipped"


def in_thread(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run `fn` on a daemon thread: (finished, result or exception). A device that blocks
    forever cannot hang the diagnosis."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # reported, not raised
            box["result"] = exc

    t = threading.Thread(target=target, daemon=True, name="pivox-diag")
    t.start()
    t.join(timeout)
    return ("result" in box, box.get("result"))


def run(cmd: list[str], timeout: float = 5.0) -> tuple[int, str, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "SYSTEMD_PAGER": "", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return p.returncode, p.stdout, p.stderr


def first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def no_systemd(stderr: str) -> bool:
    return "not been booted with systemd" in stderr or "Failed to connect to bus" in stderr


def read_key_file(path: Path) -> tuple[str | None, str]:
    """(key or None, problem) — the problem names the path, never the contents."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, ""
    except PermissionError:
        return None, f"{path} is not readable by this user"
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    return (key or None), ("" if key else f"{path} is empty")


def find_key(link: config_mod.LinkConfig) -> tuple[str | None, str, list[str]]:
    """The key the service would use: (key, where from, problems seen on the way)."""
    candidates: list[tuple[Path, str]] = []
    if link.api_key_file:
        candidates.append((Path(link.api_key_file), f"api_key_file {link.api_key_file}"))
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidates.append((Path(cred_dir) / "gemini_api_key", "systemd credential"))
    candidates.append((CREDENTIAL, f"credential file {CREDENTIAL}"))
    problems = []
    for path, source in candidates:
        key, problem = read_key_file(path)
        if key:
            return key, source, problems
        if problem:
            problems.append(problem)
    env = os.environ.get(link.api_key_env)
    if env:
        return env, f"${link.api_key_env}", problems
    return None, "", problems


def secret_values(cfg: config_mod.Config | None = None) -> list[str]:
    """Every API key value this machine knows of, for scrubbing output."""
    link = (cfg or config_mod.Config()).link
    found = set()
    paths = [CREDENTIAL]
    if link.api_key_file:
        paths.append(Path(link.api_key_file))
    if os.environ.get("CREDENTIALS_DIRECTORY"):
        paths.append(Path(os.environ["CREDENTIALS_DIRECTORY"]) / "gemini_api_key")
    for path in paths:
        key, _ = read_key_file(path)
        if key:
            found.add(key)
    for name in {link.api_key_env, "GEMINI_API_KEY", "GOOGLE_API_KEY"}:
        if os.environ.get(name):
            found.add(os.environ[name])
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, "<redacted>")
    return GOOGLE_KEY.sub("<redacted>", SECRET_PARAMS.sub(r"\1<redacted>", text))


# ------------------------------------------------------------------ checks


def check_system() -> Check:
    arch = platform.machine()
    detail = (f"pivox {__version__}, Python {platform.python_version()}, {arch}, "
              f"{platform.system()} {platform.release()}")
    model = Path("/proc/device-tree/model")
    with contextlib.suppress(OSError):
        detail += f", {model.read_text(errors='replace').strip(chr(0)).strip()}"
    if arch in ("armv7l", "armv6l"):
        return Check("system", WARN, detail + ": a 32-bit OS",
                     "use Raspberry Pi OS 64-bit: the wake engine has no 32-bit ARM build")
    return Check("system", PASS, detail)


def load_config(path: str) -> tuple[config_mod.Config, Check]:
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        return config_mod.Config(), Check(
            "config", FAIL, f"{exc} (the checks below use the built-in defaults)",
            f"fix the file (hardware/pivox.toml documents every key), then: "
            f"pivox config check {path}")
    detail = (f"{path}: model {cfg.link.model}, wake {cfg.wake.engine}/{cfg.wake.keyword}, "
              f"capture {cfg.audio.capture.device}, playback {cfg.audio.playback.device}")
    if cfg.warnings:
        return cfg, Check("config", WARN, f"{detail}; {'; '.join(cfg.warnings)}",
                          "see the warnings; pivox config check shows them too")
    return cfg, Check("config", PASS, detail)


def check_api_key(ctx: Context) -> Check:
    link = ctx.cfg.link
    key, source, problems = find_key(link)
    ctx.key, ctx.key_source = key, source
    host = urllib.parse.urlsplit(link.url).hostname or ""
    where = (f"{CREDENTIAL} (mode 0600), or set ${link.api_key_env}, or "
             f"[link] api_key_file")
    note = f" ({'; '.join(problems)})" if problems else ""
    if key:
        detail = f"set (from {source}){note}"
        if source.startswith("credential file"):
            mode = CREDENTIAL.stat().st_mode & 0o777
            if mode & 0o077:
                return Check("api key", WARN, f"{detail}; {CREDENTIAL} is mode {mode:04o}",
                             f"sudo chmod 600 {CREDENTIAL}")
        return Check("api key", PASS, detail)
    if config_mod.is_loopback(host):
        return Check("api key", PASS, f"missing (not needed for the loopback URL){note}")
    hint = f"put the key in {where}"
    if any("not readable" in p for p in problems):
        hint = f"run as root (sudo pivox diag) to read {CREDENTIAL}, or {hint}"
    return Check("api key", FAIL, f"missing{note}", hint)


def _read_alsa(cap: config_mod.CaptureConfig, seconds: float) -> tuple[np.ndarray, int]:
    import alsaaudio

    from pivox.audio.alsa import FORMATS, to_float

    fmt, _ = FORMATS[cap.format]
    period = cap.rate * cap.period_ms // 1000
    pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NORMAL, device=cap.device,
                        rate=cap.rate, channels=cap.channels, format=fmt,
                        periodsize=period, periods=4)
    try:
        want, got, overruns, chunks = int(cap.rate * seconds), 0, 0, []
        while got < want:
            n, raw = pcm.read()
            if n < 0:
                overruns += 1
                continue
            chunks.append(raw)
            got += n
        return to_float(b"".join(chunks), cap.format, cap.channels), overruns
    finally:
        pcm.close()


NO_CARDS_HINT = ("enable the card's overlay (dtoverlay=... in /boot/firmware/config.txt) and "
                 "reboot; aplay -l lists the cards the kernel found")


def sound_cards() -> list[str]:
    try:
        import alsaaudio

        return list(alsaaudio.cards())
    except Exception:
        return []


def busy(text: str) -> bool:
    return "busy" in text.lower()


def check_capture(ctx: Context) -> Check:
    cap = ctx.cfg.audio.capture
    if cap.device.startswith("wav:"):
        from pivox.audio.base import DeviceError
        from pivox.audio.wavfile import read_wav

        try:
            pcm = read_wav(cap.device[4:])
        except DeviceError as exc:
            return Check("capture", FAIL, str(exc), "fix [audio.capture] device")
        x = (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).reshape(-1, 1)
        return Check("capture", PASS, f"{cap.device} is a recording, not a microphone "
                     f"({len(x) / 16000:.1f} s): {describe_levels(meter(x))}")
    setting = f"{cap.device} ({cap.rate} Hz, {cap.channels} ch, {cap.format})"
    done, result = in_thread(lambda: _read_alsa(cap, ctx.capture_s), ctx.capture_s + 4)
    if not done:
        return Check("capture", FAIL, f"{setting} opened but delivered no audio in "
                     f"{ctx.capture_s + 4:.0f} s",
                     f"check the microphone's clock and overlay; try: arecord -D {cap.device}"
                     f" -r {cap.rate} -c {cap.channels} -f {cap.format} -d 2 /tmp/t.wav")
    if isinstance(result, BaseException):
        text = str(result)
        if busy(text) and ctx.daemon is not None:
            audio = ctx.daemon.get("audio", {})
            return Check("capture", WARN, f"{setting} is in use by the running daemon "
                         f"({audio.get('frames', 0)} frames, {audio.get('overruns', 0)} "
                         f"overruns)", "to meter it here: sudo systemctl stop pivox; "
                         "pivox diag; sudo systemctl start pivox")
        if not sound_cards():
            return Check("capture", FAIL, f"{setting}: {text}; no sound cards on this machine",
                         NO_CARDS_HINT)
        return Check("capture", FAIL, f"{setting}: {text}",
                     "list devices with: arecord -L; set [audio.capture] device, rate, "
                     "channels and format to what the card offers")
    x, overruns = result
    levels = meter(x)
    detail = f"{setting}, {len(x) / cap.rate:.1f} s: {describe_levels(levels)}"
    if overruns:
        detail += f"; {overruns} overruns"
    if cap.channels > 1:
        detail += (f"; the daemon uses channel {cap.channel}" if cap.channel >= 0
                   else "; the daemon mixes all channels")
    card = cap.device.split("CARD=")[-1].split(",")[0] if "CARD=" in cap.device else "N"
    if all(lv["peak_dbfs"] <= FLOOR_DB for lv in levels):
        return Check("capture", WARN, detail + ": only digital silence",
                     f"the capture path is muted or unpowered: alsamixer -c {card} (F4, "
                     "capture), and check the sound card overlay")
    if any(lv["clipped"] for lv in levels):
        return Check("capture", WARN, detail, f"lower the capture gain: alsamixer -c {card}")
    return Check("capture", PASS, detail)


def tone(rate: int, seconds: float = 0.5, freq: float = 660.0, level: float = 0.25
         ) -> bytes:
    n = int(rate * seconds)
    t = np.arange(n) / rate
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
    x = level * ramp * np.sin(2 * np.pi * freq * t)
    return np.round(x * 32767).astype("<i2").tobytes()


def _play_tone(pb: config_mod.PlaybackConfig, sound: bool) -> int:
    from pivox.audio.alsa import AlsaSink

    sink = AlsaSink(pb.device, pb.rate, pb.channels, pb.period_ms)
    try:
        if sound:
            pcm = tone(pb.rate, level=0.25 * pb.volume)
            step = sink.period_frames * 2
            for i in range(0, len(pcm), step):
                chunk = pcm[i : i + step]
                sink.write(chunk + bytes(step - len(chunk)))
            with contextlib.suppress(Exception):
                sink._pcm.drain()
        return sink.underruns
    finally:
        sink.close()


def check_playback(ctx: Context) -> Check:
    pb = ctx.cfg.audio.playback
    if pb.device.startswith("wav:"):
        parent = Path(pb.device[4:]).parent
        if not os.access(parent, os.W_OK):
            return Check("playback", FAIL, f"{pb.device}: {parent} is not writable",
                         "fix [audio.playback] device")
        return Check("playback", PASS, f"{pb.device} records to a file, not a speaker "
                     "(no test tone)")
    setting = f"{pb.device} ({pb.rate} Hz, {pb.channels} ch)"
    done, result = in_thread(lambda: _play_tone(pb, not ctx.no_sound), 8)
    if not done:
        return Check("playback", FAIL, f"{setting} opened but would not play",
                     f"try: speaker-test -D {pb.device} -c {pb.channels} -t sine -l 1")
    if isinstance(result, BaseException):
        text = str(result)
        if busy(text) and ctx.daemon is not None:
            return Check("playback", WARN, f"{setting} is in use by the running daemon",
                         "to test it here: sudo systemctl stop pivox; pivox diag")
        if not sound_cards():
            return Check("playback", FAIL, f"{setting}: {text}; no sound cards on this "
                         "machine", NO_CARDS_HINT)
        return Check("playback", FAIL, f"{setting}: {text}",
                     "list devices with: aplay -L; set [audio.playback] device")
    what = "opens (no tone: --no-sound)" if ctx.no_sound else \
        f"played a 0.5 s tone at volume {pb.volume}"
    detail = f"{setting} {what}" + (f"; {result} underruns" if result else "")
    return Check("playback", PASS, detail)


def check_leds(ctx: Context) -> Check:
    leds = ctx.cfg.leds
    if leds.kind == "none":
        return Check("leds", PASS, "no LEDs configured")
    setting = f"{leds.kind} on pins {list(leds.pins)}"
    try:
        from gpiozero import Device

        from pivox.hw.gpio import LedRing

        ring = LedRing.from_config(leds)
    except Exception as exc:
        kind = type(exc).__name__
        if ctx.daemon is not None and ("busy" in str(exc).lower() or "InUse" in kind):
            return Check("leds", WARN, f"{setting}: in use by the running daemon "
                         f"(colours now {ctx.daemon.get('leds', {}).get('colours', [])[:1]})",
                         "to test them here: sudo systemctl stop pivox; pivox diag")
        hint = "check [leds] pins (BCM numbers, not header pins)"
        if kind == "BadPinFactory":
            hint = ("no GPIO library found: on Raspberry Pi OS, sudo apt install "
                    "python3-lgpio (scripts/install does)")
        return Check("leds", FAIL, f"{setting}: {kind}: {exc}", hint)
    try:
        ring.show([(255, 255, 255)] * max(1, ring.count))
        time.sleep(0.3)
        factory = type(Device.pin_factory).__name__ if Device.pin_factory else "?"
    finally:
        ring.close()
    return Check("leds", PASS, f"{setting}: {ring.count or 1} lit for 0.3 s "
                 f"(pin factory {factory})")


def check_wake(ctx: Context) -> Check:
    from pivox.audio.wavfile import read_wav
    from pivox.wake import engine_for, make_engine

    data = Path(str(resources.files("pivox") / "data"))
    manifest = json.loads((data / "demo_mic.json").read_text())
    sample_kw = manifest["keyword"]
    wake = ctx.cfg.wake
    try:
        engine = engine_for(wake)
    except Exception as exc:
        return Check("wake", FAIL, f"{wake.engine}/{wake.keyword} will not load: "
                     f"{type(exc).__name__}: {exc}",
                     "reinstall: sudo scripts/install (the engine ships in the venv)")
    if engine.fallback_reason:
        return Check("wake", WARN, f"{wake.engine} cannot start ({engine.fallback_reason}); "
                     f"the speaker listens for okay_nabu instead",
                     "fix the engine's key or model file, then: sudo systemctl restart pivox")
    tested = engine if sample_kw in engine.keywords else make_engine("micro", [sample_kw])
    pcm = read_wav(data / "demo_mic.wav")
    frame = 640
    heard_at = None
    cpu0 = time.process_time()
    for i in range(0, len(pcm), frame):
        if tested.process(pcm[i : i + frame]):
            heard_at = (i + frame) / 32000
            break
    cpu = time.process_time() - cpu0
    if heard_at is None:
        return Check("wake", FAIL, f"{wake.engine} did not hear {sample_kw} in the bundled "
                     f"recording (it ends at {manifest['keyword_end_s']} s)",
                     "set [wake] cutoff = 0 (the model's own threshold) and try again")
    detail = (f"{wake.engine} heard {sample_kw} at {heard_at:.2f} s of the bundled recording "
              f"(the word ends at {manifest['keyword_end_s']} s; {cpu * 1000:.0f} ms CPU)")
    if tested is not engine:
        detail += (f"; {', '.join(engine.keywords)} ({engine.name}) loads "
                   "(no recording of it to test)")
    return Check("wake", PASS, detail)


async def _endpoint(ctx: Context) -> Check:
    import websockets
    from websockets.asyncio.client import connect

    from pivox.adapters import setup_options
    from pivox.core.models import profile_for
    from pivox.link import codec as lc
    from pivox.link.session import LiveSession

    link = ctx.cfg.link
    url = link.url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    shown = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    loop = asyncio.get_running_loop()
    steps: list[str] = []
    local = config_mod.is_loopback(host)

    def fail(detail: str, hint: str) -> Check:
        done = f" ({', '.join(steps)})" if steps else ""
        return Check("endpoint", FAIL, f"{shown}: {detail}{done}", hint)

    def ms(t0: float) -> str:
        took = (time.monotonic() - t0) * 1000
        return f"{took:.1f} ms" if took < 10 else f"{took:.0f} ms"

    t0 = time.monotonic()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), 5)
    except (OSError, TimeoutError) as exc:
        return fail(f"cannot resolve {host}: {exc}",
                    f"check the network and DNS: getent hosts {host}; cat /etc/resolv.conf")
    steps.append(f"DNS {ms(t0)}")
    addr = infos[0][4][0]

    t0 = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), 5)
        writer.close()
    except (OSError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else \
            (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        hint = ("nothing listens there: is the server running? (pivox serve-reference "
                f"--port {port})") if local else \
            f"a firewall or proxy in the way? try: curl -sI https://{host}/"
        return fail(f"TCP connect to {addr}:{port}: {why}", hint)
    steps.append(f"TCP {ms(t0)}")

    if secure:
        t0 = time.monotonic()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                addr, port, ssl=ssl.create_default_context(), server_hostname=host), 10)
            writer.close()
        except ssl.SSLCertVerificationError as exc:
            return fail(f"TLS certificate not accepted: {exc.verify_message}",
                        "a wrong clock breaks TLS: see the clock check (timedatectl); "
                        "or update ca-certificates")
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            return fail(f"TLS handshake: {exc or type(exc).__name__}",
                        "a proxy intercepting TLS? try: openssl s_client -connect "
                        f"{host}:{port}")
        steps.append(f"TLS {ms(t0)}")

    key_link = link  # the session reads the key itself, as the daemon would
    if ctx.key and ctx.key_source.startswith("credential file"):
        key_link = dataclasses.replace(link, api_key_file=str(CREDENTIAL))  # the unit's
    session = LiveSession(key_link, setup_options(ctx.cfg), ctx.cfg.audio.frame_ms,
                          lambda _e: None)
    target, headers = session.target()
    if headers is None:
        return Check("endpoint", WARN, f"{shown}: reachable ({', '.join(steps)}); "
                     f"WebSocket not tried: {target}",
                     "see the api key check")

    t0 = time.monotonic()
    try:
        async with connect(target, additional_headers=headers,
                           open_timeout=link.connect_timeout_s, close_timeout=2,
                           compression=None, max_size=16 * 1024 * 1024) as ws:
            steps.append(f"WebSocket {ms(t0)}")
            profile, _ = profile_for(link.model)
            codec = lc.LiveCodec(profile)
            codec.start(setup_options(ctx.cfg), None)
            t0 = time.monotonic()
            for frame in codec.frames_to_send():
                await ws.send(frame)
            answered = await asyncio.wait_for(_setup_complete(ws, codec),
                                              link.connect_timeout_s)
            if not answered:
                return fail("setup was not answered", "check [link] model")
            steps.append(f"setup answered {ms(t0)}")
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            return fail(f"the API key was refused (HTTP {status})",
                        f"check the key in {CREDENTIAL} (or ${link.api_key_env})")
        return fail(f"the server refused the WebSocket (HTTP {status})",
                    "check [link] url")
    except websockets.ConnectionClosed as exc:
        rcvd = exc.rcvd
        reason = f"closed with {rcvd.code}: {rcvd.reason}" if rcvd else "connection lost"
        hint = "check [link] model and options: pivox config check" if rcvd and \
            rcvd.code in (1007, 1008) else "try again; see the journal check"
        return fail(f"setup refused: {reason}", hint)
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        return fail(f"WebSocket: {type(exc).__name__}: {exc}", "check [link] url")
    return Check("endpoint", PASS, f"{shown} ({', '.join(steps)}; model {link.model})")


async def _setup_complete(ws: Any, codec: Any) -> bool:
    from pivox.link import codec as lc

    async for frame in ws:
        for event in codec.receive(frame):
            if isinstance(event, lc.SetupComplete):
                return True
    return False


def check_endpoint(ctx: Context) -> Check:
    return asyncio.run(_endpoint(ctx))


def check_clock() -> Check:
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if shutil.which("timedatectl") is None:
        return Check("clock", WARN, f"{now}; cannot tell if it is synchronised "
                     "(no timedatectl)", "a wrong clock breaks TLS: check the date")
    rc, out, err = run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    value = out.strip()
    if rc != 0 or not value:
        return Check("clock", WARN, f"{now}; cannot tell if it is synchronised "
                     f"({first_line(err) or 'no answer'})",
                     "a wrong clock breaks TLS: check the date")
    if value == "yes":
        return Check("clock", PASS, f"{now}, synchronised")
    return Check("clock", WARN, f"{now}, not synchronised",
                 "sudo timedatectl set-ntp true; timedatectl timesync-status (a Pi has no "
                 "battery clock: TLS fails until the time is set)")


def check_service() -> Check:
    if shutil.which("systemctl") is None:
        return Check("service", WARN, "no systemctl on this machine",
                     "run the daemon by hand: pivox run --config /etc/pivox/pivox.toml")
    props = "LoadState,ActiveState,SubState,Result,NRestarts,WatchdogUSec," \
            "WatchdogTimestampMonotonic,ActiveEnterTimestamp"
    rc, out, err = run(["systemctl", "show", SERVICE, "-p", props])
    if rc != 0 or no_systemd(err):
        return Check("service", WARN, f"cannot ask systemd ({first_line(err) or rc})",
                     "systemd is not running here; run the daemon by hand")
    p = dict(line.partition("=")[::2] for line in out.splitlines())
    if p.get("LoadState") == "not-found":
        return Check("service", WARN, "pivox.service is not installed",
                     "sudo scripts/install")
    active, sub, result = p.get("ActiveState", "?"), p.get("SubState", "?"), p.get("Result")
    detail = f"{active} ({sub}), restarts {p.get('NRestarts', '?')}, last result {result}"
    wd = p.get("WatchdogUSec", "")
    if wd and wd not in ("0", "infinity"):
        detail += f", watchdog {wd}"
        last = p.get("WatchdogTimestampMonotonic", "0")
        if last.isdigit() and int(last) > 0:
            detail += f" (last ping {time.monotonic() - int(last) / 1e6:.1f} s ago)"
    if result == "watchdog":
        return Check("service", FAIL, detail + ": the watchdog stopped it",
                     "the microphone stopped delivering: see the capture check; "
                     "journalctl -u pivox -b")
    if active == "active":
        return Check("service", PASS, detail)
    if active == "failed":
        return Check("service", FAIL, detail, "journalctl -u pivox -n 50; then: "
                     "sudo systemctl restart pivox")
    return Check("service", WARN, detail, "sudo systemctl enable --now pivox")


def ask_daemon(cfg: config_mod.Config) -> tuple[dict[str, Any] | None, str]:
    from pivox.control import request

    try:
        reply = request(cfg.control.socket, "status", timeout=3)
    except PermissionError:
        return None, "denied"
    except (OSError, ValueError) as exc:
        return None, getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return (reply if reply.get("ok") else None), ("" if reply.get("ok") else "bad reply")


def check_daemon(ctx: Context, why: str) -> Check:
    path = ctx.cfg.control.socket
    st = ctx.daemon
    if st is None:
        if why == "denied":
            return Check("daemon", WARN, f"not allowed to use {path}",
                         "run as root (sudo pivox diag), or add yourself to group pivox")
        return Check("daemon", WARN, f"daemon not running (no answer on {path}: {why})",
                     "sudo systemctl start pivox, or: pivox run --config "
                     f"{ctx.cfg.source if ctx.config_ok else config_mod.DEFAULT_PATH}")
    link, audio = st.get("link", {}), st.get("audio", {})
    detail = (f"state {st.get('state')}" + (f" ({st['reason']})" if st.get("reason") else "")
              + f", up {st.get('uptime_s')} s, link "
              + ("connected" if link.get("connected") else "not connected")
              + (f" (last error: {link['last_error']})" if link.get("last_error") else "")
              + f", mic {audio.get('frames')} frames / {audio.get('overruns')} overruns / "
              f"{audio.get('dropped_frames')} dropped, volume {audio.get('volume')}"
              + (f", echo cancelled by {audio.get('erle_db')} dB "
                 f"({'converged' if audio.get('echo_converged') else 'learning'}, "
                 f"{audio.get('duplex')} duplex, talked over {audio.get('talked_over')} times)"
                 if audio.get("echo_cancelling") else ", no echo canceller (half duplex)"))
    if st.get("state") == "error":
        return Check("daemon", FAIL, detail, "journalctl -u pivox -n 50")
    if st.get("state") == "offline":
        return Check("daemon", WARN, detail, "see the endpoint check")
    return Check("daemon", PASS, detail)


def check_journal() -> Check:
    if shutil.which("journalctl") is None:
        return Check("journal", WARN, "no journalctl on this machine",
                     "the service logs to stderr: see wherever it was started from")
    rc, out, err = run(["journalctl", "-u", SERVICE, "-p", "err", "-n", "5", "--no-pager",
                        "-o", "short-iso"])
    if rc != 0:
        return Check("journal", WARN, f"cannot read the journal ({first_line(err) or rc})",
                     "run as root, or add yourself to group systemd-journal")
    if "No journal files" in err:
        return Check("journal", WARN, "no journal files on this machine (journald is not "
                     "running, or keeps nothing)", "systemctl status systemd-journald")
    lines = [ln[:240] for ln in out.splitlines()
             if ln.strip() and not ln.startswith("-- ")]  # "-- No entries --", boot marks
    if not lines:
        return Check("journal", PASS, "no errors logged by pivox")
    return Check("journal", WARN, f"{len(lines)} recent errors: " + " | ".join(lines),
                 "journalctl -u pivox -b for the whole story")


# ------------------------------------------------------------------ running them


def guarded(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # one broken check must not hide the others
        return Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "please report this with scripts/collect-diagnostics")


def run_checks(config_path: str, *, no_sound: bool = False, capture_s: float = 1.0
               ) -> list[Check]:
    cfg, cfg_check = load_config(config_path)
    ctx = Context(cfg, cfg_check.status != FAIL, no_sound, capture_s)
    ctx.daemon, why = ask_daemon(cfg)
    checks = [
        guarded("system", check_system),
        cfg_check,
        guarded("api key", lambda: check_api_key(ctx)),
        guarded("capture", lambda: check_capture(ctx)),
        guarded("playback", lambda: check_playback(ctx)),
        guarded("leds", lambda: check_leds(ctx)),
        guarded("wake", lambda: check_wake(ctx)),
        guarded("endpoint", lambda: check_endpoint(ctx)),
        guarded("clock", check_clock),
        guarded("service", check_service),
        guarded("daemon", lambda: check_daemon(ctx, why)),
        guarded("journal", check_journal),
    ]
    secrets = secret_values(cfg)
    for c in checks:
        c.detail, c.hint = redact(c.detail, secrets), redact(c.hint, secrets)
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():4}  {c.name:{width}}  {c.detail}")
        if c.hint:
            lines.append(f"{'':4}  {'':{width}}  try: {c.hint}")
    counts = {s: sum(c.status == s for c in checks) for s in (FAIL, WARN, PASS)}
    lines.append(f"{counts[FAIL]} failed, {counts[WARN]} warnings, {counts[PASS]} passed")
    return "\n".join(lines)


def main(config_path: str, *, as_json: bool = False, no_sound: bool = False) -> int:
    import logging

    logging.getLogger().setLevel(logging.CRITICAL)  # the checks speak for themselves
    checks = run_checks(config_path, no_sound=no_sound)
    if as_json:
        print(json.dumps({"checks": [dataclasses.asdict(c) for c in checks]}, indent=2))
    else:
        print(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


# ------------------------------------------------------------------ support bundle helpers

SECRET_KEY = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"]*(?:key|token|secret|password)"
                        r"[A-Za-z0-9_.\-\"]*)(\s*=\s*).*$", re.I)
SAFE_KEYS = {"api_key_env", "api_key_file"}


def redacted_config(path: str) -> str:
    """The config file as written, minus anything that could be a secret: values of keys
    named like key/token/secret/password (except api_key_env and api_key_file, which are a
    variable name and a path), credentials in URLs, and key-shaped strings anywhere."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"# {path}: cannot read ({exc.strerror})\n"
    out = [f"# {path}, secrets removed by pivox diag\n"]
    for line in text.splitlines(keepends=True):
        m = SECRET_KEY.match(line)
        if m and m.group(2).strip('"') not in SAFE_KEYS:
            line = f'{m.group(1)}{m.group(2)}{m.group(3)}"<redacted>"\n'
        out.append(line)
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError:
        cfg = None
    return redact("".join(out), secret_values(cfg))


def scrub_tree(root: Path, secrets: list[str]) -> int:
    """Replace every known secret in every file under `root`; returns files changed."""
    changed = 0
    for f in root.rglob("*"):
        if not f.is_file():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        clean = redact(text, secrets)
        if clean != text:
            f.write_text(clean, encoding="utf-8")
            changed += 1
    return changed


def _bundle_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pivox.diag")
    p.add_argument("--config", default=str(config_mod.DEFAULT_PATH))
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--redact-config", metavar="PATH")
    g.add_argument("--scrub", metavar="DIR")
    args = p.parse_args(argv)
    if args.redact_config:
        sys.stdout.write(redacted_config(args.redact_config))
        return 0
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError:
        cfg = None
    scrub_tree(Path(args.scrub), secret_values(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(_bundle_main())
