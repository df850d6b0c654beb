"""A debug-only hook that kills or wedges one part of a running daemon, to prove that the
supervisor and the watchdog notice.

Off unless the process starts with `PIVOX_FAULT_HOOK=1` (tests set it; the unit never
does): then the control socket accepts `{"cmd": "fault", "part": P, "mode": M}`. A kill
raises `InjectedFault` inside the part; a wedge blocks it without raising: a thread stops
in its loop, a coroutine blocks the event loop (the way a blocking call in a coroutine
wedges a real daemon). A stall stops a coroutine alone while the loop runs on (the way an
await that is never answered does): only the part's own check can tell. Either way,
systemd must see the pings stop or the process exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("pivox.faults")
ENV = "PIVOX_FAULT_HOOK"
MODES = ("kill", "wedge", "stall")


class InjectedFault(RuntimeError):
    """Raised inside a part by the debug fault hook."""


def enabled(env: dict[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(ENV) == "1"


class FaultHook:
    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts
        self._armed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._changed: dict[str, asyncio.Event] = {}

    def arm(self, part: str, mode: str) -> None:
        if part not in self.parts:
            raise ValueError(f"unknown part {part!r}: one of {', '.join(self.parts)}")
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}: kill, wedge or stall")
        log.warning("fault hook: %s %s", mode, part)
        with self._lock:
            self._armed[part] = mode
        event = self._changed.get(part)
        if event is not None:
            event.set()

    def _take(self, part: str) -> str:
        with self._lock:
            return self._armed.pop(part, "")

    def point(self, part: str) -> Callable[[], None]:
        """A check for a thread's loop: raises or blocks once armed."""
        def check() -> None:
            mode = self._take(part)
            if mode == "kill":
                raise InjectedFault(f"{part} killed by the fault hook")
            if mode in ("wedge", "stall"):
                while True:  # wedged for good, as a stuck driver call would be
                    time.sleep(3600)
        return check

    def wrap(self, part: str, run: Callable[[], Coroutine[Any, Any, None]]
             ) -> Callable[[], Coroutine[Any, Any, None]]:
        """A task's coroutine that behaves as `run` until armed, then fails, wedges or
        stalls."""
        async def guarded() -> None:
            event = self._changed.setdefault(part, asyncio.Event())
            inner = asyncio.ensure_future(run())
            try:
                while True:
                    waiter = asyncio.ensure_future(event.wait())
                    await asyncio.wait([inner, waiter], return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    if inner.done():
                        return inner.result()
                    event.clear()
                    mode = self._take(part)
                    if mode == "kill":
                        raise InjectedFault(f"{part} killed by the fault hook")
                    if mode == "wedge":
                        while True:  # blocks the loop: nothing else runs
                            time.sleep(3600)
                    if mode == "stall":  # the part stops; the loop and the task live on
                        inner.cancel()
                        await asyncio.Event().wait()
            finally:
                inner.cancel()
        return guarded
