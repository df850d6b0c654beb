"""One owner for every long-lived task and thread, and a watchdog that trusts only it.

Tasks run inside one `asyncio.TaskGroup`. A task that raises is logged once, naming the
part and the error; a part marked `restart` (LEDs, the control socket: niceties whose loss
must not take the speaker down) is started again, at most `RESTARTS_PER_MIN` a minute,
and the journal says so; any other failure ends the group, the daemon shuts down and
`pivox run` exits non-zero so systemd restarts the service.

Threads (capture, playback) cannot be awaited: they hand an unexpected exception to
`thread_died`, which fails the group the same way, and they beat a heartbeat that each
part's `check` compares with `now`. `WATCHDOG=1` goes out only when every part's check
passes and the loop itself turns on time, so a part that wedges without raising (a
blocked ALSA read, a coroutine stuck in a blocking call) stops the pings and systemd
restarts the service after `WatchdogSec`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pivox.hw.systemd import Notifier

log = logging.getLogger("pivox.supervisor")
RESTARTS_PER_MIN = 5
MAX_LOOP_LAG_S = 1.0  # the loop woke this late: something blocks it
CHECK_S = 0.5  # how often health is checked when systemd's watchdog is off

Check = Callable[[float], str]  # now -> "" when healthy, else why not


class PartDied(Exception):
    """A part of the daemon failed; the service must restart."""

    def __init__(self, part: str, error: BaseException) -> None:
        super().__init__(f"{part}: {type(error).__name__}: {error}")
        self.part = part
        self.error = error


@dataclass
class Part:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]] | None  # None: a thread, checked only
    check: Check | None = None
    restart: bool = False
    restarts: deque[float] = field(default_factory=deque)


@dataclass(frozen=True)
class HealthSnapshot:
    healthy: bool
    problems: tuple[str, ...]  # "part: why", for status and the journal
    loop_lag_ms: float
    pings: int
    restarts: dict[str, int]


def verdict(checks: dict[str, str], loop_lag_s: float) -> tuple[str, ...]:
    """The problems that withhold the watchdog ping: every failing check, and a late loop."""
    problems = tuple(f"{name}: {why}" for name, why in checks.items() if why)
    if loop_lag_s > MAX_LOOP_LAG_S:
        problems += (f"event loop: woke {loop_lag_s * 1000:.0f} ms late",)
    return problems


class Supervisor:
    def __init__(self, notifier: Notifier, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._notifier = notifier
        self._clock = clock
        self._parts: list[Part] = []
        self._failed: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._problems: tuple[str, ...] = ()
        self._lag_s = 0.0
        self._pings = 0

    def task(self, name: str, run: Callable[[], Coroutine[Any, Any, None]], *,
             check: Check | None = None, restart: bool = False) -> None:
        self._parts.append(Part(name, run, check, restart))

    def thread(self, name: str, check: Check) -> None:
        self._parts.append(Part(name, None, check))

    def thread_died(self, part: str) -> Callable[[BaseException], None]:
        """A callback for `part`'s thread: any thread may call it, once, as it dies."""
        def died(exc: BaseException) -> None:
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            loop.call_soon_threadsafe(self._fail, PartDied(part, exc))
        return died

    def _fail(self, exc: PartDied) -> None:
        log.critical("%s died: %s: %s; restarting the service", exc.part,
                     type(exc.error).__name__, exc.error, extra={"PIVOX_PART": exc.part})
        if self._failed is not None and not self._failed.done():
            self._failed.set_exception(exc)

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(not self._problems, self._problems, round(self._lag_s * 1000, 1),
                              self._pings, {p.name: len(p.restarts) for p in self._parts})

    async def run(self, stop: asyncio.Event) -> None:
        """Run every part until `stop` is set (returns) or a part fails (raises PartDied)."""
        self._loop = asyncio.get_running_loop()
        self._failed = self._loop.create_future()
        try:
            async with asyncio.TaskGroup() as tg:
                for part in self._parts:
                    if part.run is not None:
                        tg.create_task(self._guard(part), name=part.name)
                tg.create_task(self._watchdog(), name="watchdog")
                tg.create_task(self._until(stop), name="stop")
        except* _Stopped:
            pass
        except* PartDied as group:
            raise group.exceptions[0] from None

    async def _until(self, stop: asyncio.Event) -> None:
        assert self._failed is not None
        waiter: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        either: list[asyncio.Future[Any]] = [waiter, self._failed]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._failed.done():
            self._failed.result()  # raises the thread's PartDied
        raise _Stopped

    async def _guard(self, part: Part) -> None:
        assert part.run is not None
        while True:
            try:
                await part.run()
                error: BaseException = RuntimeError("returned while the daemon runs")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            now = self._clock()
            while part.restarts and now - part.restarts[0] > 60.0:
                part.restarts.popleft()
            if part.restart and len(part.restarts) < RESTARTS_PER_MIN:
                part.restarts.append(now)
                log.error("%s failed (%s: %s); restarting it", part.name,
                          type(error).__name__, error, extra={"PIVOX_PART": part.name})
                await asyncio.sleep(0.2 * len(part.restarts))
                continue
            died = PartDied(part.name, error)
            self._fail(died)
            raise died

    async def _watchdog(self) -> None:
        """Check every part each period; ping only when all are well."""
        interval = self._notifier.watchdog_s / 2 if self._notifier.watchdog_s > 0 else CHECK_S
        interval = min(interval, CHECK_S)
        ping_every = self._notifier.watchdog_s / 2
        last_ping = 0.0
        expected = self._clock() + interval
        while True:
            await asyncio.sleep(max(0.0, expected - self._clock()))
            now = self._clock()
            self._lag_s = max(0.0, now - expected)
            expected = now + interval
            checks = {p.name: p.check(now) if p.check else "" for p in self._parts}
            problems = verdict(checks, self._lag_s)
            if problems != self._problems:
                if problems:
                    log.warning("watchdog withheld: %s", "; ".join(problems),
                                extra={"PIVOX_ERROR_KIND": "health"})
                elif self._problems:
                    log.info("all parts healthy again")
                self._problems = problems
            if not problems and ping_every > 0 and now - last_ping >= ping_every * 0.9:
                self._notifier.watchdog()
                self._pings += 1
                last_ping = now


class _Stopped(Exception):
    """The daemon was asked to stop: ends the group without an error."""
