"""Give the OS thread its Python thread's name, so `top -H`, `ps -L` and /proc/PID/task
say which part of the daemon spends the board's CPU (Python 3.11 keeps a Thread's name to
itself; the kernel's is what every tool on the box shows). Linux keeps 15 bytes of it."""

from __future__ import annotations

import contextlib
import ctypes
import threading

_PR_SET_NAME = 15
_MAX = 15


def name_os_thread(name: str | None = None) -> None:
    """Name the calling thread (by default after its Python thread). Where there is no
    prctl (not Linux), the thread keeps its name: it is a diagnostic, never a failure."""
    raw = (name or threading.current_thread().name).encode(errors="replace")[:_MAX]
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0)
