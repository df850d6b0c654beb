"""What every check returns and what the checks share while they run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivox import config as config_mod

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class Check:
    """One line of the report: pass, warn or fail, what was seen, what to try next."""

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
    daemon: dict[str, Any] | None = None  # its status, when it answered


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
