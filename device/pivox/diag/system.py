"""The checks of the machine around the speaker: system, config, API key, LEDs, clock,
service, daemon (over the control socket) and journal. None of them needs sound."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

from pivox import __version__
from pivox import config as config_mod
from pivox.diag.check import FAIL, PASS, WARN, Check, Context
from pivox.secrets import CREDENTIAL, find_api_key

SERVICE = "pivox"


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
    """Where the key the service would use comes from (never the key itself)."""
    link = ctx.cfg.link
    found = find_api_key(link)
    host = urllib.parse.urlsplit(link.url).hostname or ""
    where = (f"{CREDENTIAL} (mode 0600), or set ${link.api_key_env}, or "
             f"[link] api_key_file")
    note = f" ({'; '.join(found.problems)})" if found.problems else ""
    if found.key:
        detail = f"set (from {found.source}){note}"
        if found.source.startswith("credential file"):
            mode = CREDENTIAL.stat().st_mode & 0o777
            if mode & 0o077:
                return Check("api key", WARN, f"{detail}; {CREDENTIAL} is mode {mode:04o}",
                             f"sudo chmod 600 {CREDENTIAL}")
        return Check("api key", PASS, detail)
    if config_mod.is_loopback(host):
        return Check("api key", PASS, f"missing (not needed for the loopback URL){note}")
    hint = f"put the key in {where}"
    if any("not readable" in p for p in found.problems):
        hint = f"run as root (sudo pivox diag) to read {CREDENTIAL}, or {hint}"
    return Check("api key", FAIL, f"missing{note}", hint)


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
