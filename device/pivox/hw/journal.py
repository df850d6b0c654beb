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

No thread writes a record itself: every logger hands it to a bounded queue (the message
formatted, the context fields taken, at the call) and one writer thread passes it on. So
a full stderr pipe or a slow journal never blocks the audio threads or the loop; past
QUEUE_RECORDS waiting, records are dropped and counted (`dropped()`), never waited for.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import os
import queue
import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pivox.hw.threadname import name_os_thread

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "pivox"
FIELD = re.compile(r"PIVOX_[A-Z0-9_]+")
STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal keeps the time and the priority

QUEUE_RECORDS = 2000

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


class _Handoff(logging.handlers.QueueHandler):
    """Formats at the call (so the record carries its message and context as they were)
    and queues without ever blocking; a full queue drops the record and counts it."""

    def __init__(self, q: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(q)
        self.dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        out: logging.LogRecord = super().prepare(record)
        for name, value in _context.items():
            out.__dict__.setdefault(name, value)
        return out

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Writer:
    """The one thread that writes records out, to whatever handler setup chose."""

    def __init__(self, handler: logging.Handler) -> None:
        self.queue: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_RECORDS)
        self.handoff = _Handoff(self.queue)
        self.handler = handler
        self._thread = threading.Thread(target=self._run, name="pivox-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        name_os_thread()
        while (record := self.queue.get()) is not None:
            self.handler.handle(record)
            self.queue.task_done()
        self.queue.task_done()

    def flush(self, timeout: float) -> bool:
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Write out what is queued (for at most `timeout`: stderr may be stuck), then end."""
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)


_writer: _Writer | None = None


def flush(timeout: float = 2.0) -> bool:
    """Wait until every record logged so far has been written; False on timeout."""
    return _writer.flush(timeout) if _writer is not None else True


def dropped() -> int:
    """Records dropped because the writer was that far behind."""
    return _writer.handoff.dropped if _writer is not None else 0


def _stop_writer() -> None:
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def setup(level: str = "info", env: Mapping[str, str] | None = None,
          send: Sender | None = None) -> str:
    """Configure the root logger; returns "journal" or "stderr" (what was chosen)."""
    global _writer
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    _stop_writer()
    handler: logging.Handler
    if under_journal(env):
        handler = JournalHandler(send)
        handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
        chosen = "journal"
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(STDERR_FORMAT))
        chosen = "stderr"
    _writer = _Writer(handler)
    root.addHandler(_writer.handoff)
    root.setLevel(getattr(logging, level.upper()))
    return chosen
