"""What the link's run task promises the supervisor: to be back from every step on time,
and never to lose a helper task without a word.

A task stuck in an await that never ends (the loop running on) leaves the speaker offline
or deaf without an error, and a helper that raised (the sender, the liveness guard) would
be a connection half dead. Time is an argument; nothing here reads a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from pivox.core.liveness import stale
from pivox.secrets import scrub

log = logging.getLogger("pivox.link")
STALL_S = 5.0  # the task this late back from a bounded step has stalled


class Vigil:
    def __init__(self) -> None:
        self.due: float | None = None  # the run task is back at its policy by then
        self._waiting = False

    def stalled(self, now: float) -> str:
        """The supervisor's check: "" while the task keeps its word."""
        return "" if self.due is None else stale("link step finished", self.due, now, STALL_S)

    @contextlib.contextmanager
    def waiting(self, until: float | None) -> Iterator[None]:
        """A wait for news or for `until` (None: nothing to do until woken)."""
        self.due, self._waiting = until, True
        try:
            yield
        finally:
            self._waiting = False

    def woken(self, now: float) -> None:
        """News ends a wait at once: the task must be back from it promptly."""
        if self._waiting:
            self.due = now if self.due is None else min(self.due, now)


def watch(task: asyncio.Task[None], failed: Callable[[BaseException], None]) -> None:
    """Logs a helper's error and hands it to `failed` (cancellation is no error)."""
    def done(t: asyncio.Task[None]) -> None:
        if t.cancelled() or (exc := t.exception()) is None:
            return
        log.error("link %s failed: %s: %s", t.get_name().removeprefix("pivox-link-"),
                  type(exc).__name__, scrub(str(exc)))
        failed(exc)
    task.add_done_callback(done)
