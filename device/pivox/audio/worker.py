"""What both audio threads share with the supervisor: a heartbeat, a death that is reported,
and a device retry that keeps beating.

A thread that cannot open its device sleeps between retries but still beats, so the
supervisor tells a missing device (the error state, with LEDs and journal saying why,
recovering by itself) from a wedged one (no beat: the watchdog stops and systemd restarts
the service). An unexpected exception goes to `on_died` instead of vanishing with the
thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pivox.hw.threadname import name_os_thread

RETRY_BEAT_S = 0.5


class DeviceThread:
    def __init__(self, name: str, retry_s: float,
                 on_died: Callable[[BaseException], None] | None,
                 fault: Callable[[], None] | None) -> None:
        self._retry_s = retry_s
        self._on_died = on_died
        self._fault = fault  # a debug hook that may raise or block the loop (tests only)
        self.heartbeat = time.monotonic()
        self._failed = False  # the device is missing; the thread retries it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError

    def _guarded(self) -> None:
        name_os_thread()  # `top -H` on the box says which part spends the CPU
        try:
            self._run()
        except BaseException as exc:  # the supervisor decides; the thread only reports
            if self._on_died is None:
                raise
            self._on_died(exc)

    def _retry_wait(self) -> None:
        """Sleep until the next reopen, beating so a missing device is not a wedge."""
        end = time.monotonic() + self._retry_s
        while not self._stop.is_set() and time.monotonic() < end:
            self.heartbeat = time.monotonic()
            self._stop.wait(min(RETRY_BEAT_S, self._retry_s))
