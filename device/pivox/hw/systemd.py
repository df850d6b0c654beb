"""sd_notify for the service manager: READY, STATUS and the watchdog.

Without $NOTIFY_SOCKET every call is a no-op, so the same daemon runs from a shell.
systemd-python 235 has no watchdog_enabled(): $WATCHDOG_USEC/$WATCHDOG_PID are read here.
A notification that cannot be delivered (systemd-python raises OSError when the socket is
gone) is counted and logged once: telling the service manager must never stop the daemon.
"""

from __future__ import annotations

import logging
import os

from systemd import daemon as sd_daemon

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and ours else 0.0
        self.ready_sent = False
        self.errors = 0

    def _send(self, text: str) -> None:
        if not self.enabled:
            return
        try:
            sd_daemon.notify(text)
        except OSError as exc:
            self.errors += 1
            if self.errors == 1:
                log.warning("cannot notify the service manager (%s); carrying on", exc)

    def ready(self, status: str) -> None:
        if not self.ready_sent:
            self.ready_sent = True
            self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")
