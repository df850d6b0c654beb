"""Logging: to the journal with structured fields under systemd, plain stderr otherwise.

Under systemd (stderr is the stream named by $JOURNAL_STREAM, or $INVOCATION_ID is set and
journald's socket exists) records go through journald's native protocol, so a field a log
call passes with `extra=` becomes a journal field that can be filtered on:

    log.warning("link problem: %s", detail, extra={"PIVOX_ERROR_KIND": "link"})
    journalctl -u pivox PIVOX_ERROR_KIND=link

Only upper-case fields starting with PIVOX_ are sent from `extra` (the rest of a log record
is Python's business). `set_context` sets fields carried by every later record, such as
the current state (PIVOX_STATE) and conversation (PIVOX_SESSION). $PIVOX_LOG=journal or
=stderr overrides the choice.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "pivox"
FIELD = re.compile(r"PIVOX_[A-Z0-9_]+")
STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal keeps the time and the priority

_context: dict[str, str] = {}


def set_context(**fields: object) -> None:
    """Fields for every later record (PIVOX_STATE="idle", ...); None or "" removes one."""
    for name, value in fields.items():
        if not FIELD.fullmatch(name):
            raise ValueError(f"journal field {name!r} must match {FIELD.pattern}")
        if value is None or value == "":
            _context.pop(name, None)
        else:
            _context[name] = str(value)


def context() -> dict[str, str]:
    return dict(_context)


def under_journal(env: Mapping[str, str] | None = None, stderr_fd: int = 2) -> bool:
    """Whether systemd connected us to the journal (sd_journal_stream_fd's convention)."""
    env = os.environ if env is None else env
    forced = env.get("PIVOX_LOG", "")
    if forced in ("journal", "stderr"):
        return forced == "journal"
    stream = env.get("JOURNAL_STREAM", "")
    if stream:
        try:
            st = os.fstat(stderr_fd)
        except OSError:
            return False
        return stream == f"{st.st_dev}:{st.st_ino}"
    return bool(env.get("INVOCATION_ID")) and os.path.exists(JOURNAL_SOCKET)


def priority(levelno: int) -> int:
    """syslog priority for a logging level (journald's PRIORITY=)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


Sender = Callable[..., Any]


class JournalHandler(logging.Handler):
    """One journal entry per record: MESSAGE, PRIORITY, code location, PIVOX_* fields.

    systemd-python's own handler forwards every attribute of the record (most of them
    not valid field names); this one sends a fixed set plus the PIVOX_ fields.
    """

    def __init__(self, send: Sender | None = None, identifier: str = IDENTIFIER) -> None:
        super().__init__()
        if send is None:
            from systemd import journal

            send = journal.send
        self._send = send
        self.identifier = identifier

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "PRIORITY": str(priority(record.levelno)),
            "SYSLOG_IDENTIFIER": self.identifier,
            "LOGGER": record.name,
            "THREAD_NAME": record.threadName or "",
            "CODE_FILE": record.pathname,
            "CODE_LINE": record.lineno,
            "CODE_FUNC": record.funcName,
        }
        out.update(_context)
        for name, value in record.__dict__.items():
            if name.startswith("PIVOX_") and FIELD.fullmatch(name) and value is not None:
                out[name] = str(value)
        return out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(self.format(record), **self.fields(record))
        except Exception:
            self.handleError(record)


def setup(level: str = "info", env: Mapping[str, str] | None = None,
          send: Sender | None = None) -> str:
    """Configure the root logger; returns "journal" or "stderr" (what was chosen)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if under_journal(env):
        handler = JournalHandler(send)
        handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
        chosen = "journal"
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
        chosen = "stderr"
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    return chosen
