"""`pivox diag`: the one command to run over SSH when a speaker misbehaves.

Each check says pass, warn or fail, what it saw, and the next thing to try. It works with
the daemon stopped (then the daemon check warns), never prints the API key (only whether
one is set, and where from), and exits 1 if any check failed. The report is its own: what
libasound says on the way lands in the capture or playback check, not on stderr.

    audio    capture (level meter), playback (a tone), wake (the bundled recording)
    network  endpoint: DNS, TCP, TLS, WebSocket handshake and setup, with times
    system   system, config, api key, LEDs, clock, service, daemon, journal
    bundle   the config without secrets, and the scrub (scripts/collect-diagnostics)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable

from pivox.diag import audio, network, system
from pivox.diag.check import FAIL, PASS, WARN, Check, Context
from pivox.secrets import config_secrets, redact

__all__ = ["FAIL", "PASS", "WARN", "Check", "Context", "main", "render", "run_checks"]


def guarded(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # one broken check must not hide the others
        return Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "please report this with scripts/collect-diagnostics")


def run_checks(config_path: str, *, no_sound: bool = False, capture_s: float = 1.0
               ) -> list[Check]:
    cfg, cfg_check = system.load_config(config_path)
    ctx = Context(cfg, cfg_check.status != FAIL, no_sound, capture_s)
    ctx.daemon, why = system.ask_daemon(cfg)
    checks = [
        guarded("system", system.check_system),
        cfg_check,
        guarded("api key", lambda: system.check_api_key(ctx)),
        guarded("capture", lambda: audio.check_capture(ctx)),
        guarded("playback", lambda: audio.check_playback(ctx)),
        guarded("leds", lambda: system.check_leds(ctx)),
        guarded("wake", lambda: audio.check_wake(ctx)),
        guarded("endpoint", lambda: network.check_endpoint(ctx)),
        guarded("clock", system.check_clock),
        guarded("service", system.check_service),
        guarded("daemon", lambda: system.check_daemon(ctx, why)),
        guarded("journal", system.check_journal),
    ]
    secrets = config_secrets(cfg)
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
    logging.getLogger().setLevel(logging.CRITICAL)  # the checks speak for themselves
    checks = run_checks(config_path, no_sound=no_sound)
    if as_json:
        print(json.dumps({"checks": [dataclasses.asdict(c) for c in checks]}, indent=2))
    else:
        print(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0
