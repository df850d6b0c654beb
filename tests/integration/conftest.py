"""Fixtures for the integration tests; the rigs themselves live in live.py."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live import run_daemon as _run_daemon
from test_systemd import NotifySocket


@pytest.fixture
def run_daemon() -> Callable[..., Any]:
    """Run a daemon until `until(run)` holds (or a timeout), then stop it cleanly."""
    return _run_daemon


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    """A datagram socket bound where systemd's would be: what the service manager hears."""
    short = Path(tempfile.mkdtemp(prefix="pvx"))  # AF_UNIX paths are limited to 107 bytes
    sock = NotifySocket(short / "notify")
    yield sock
    sock.close()
    shutil.rmtree(short, ignore_errors=True)
