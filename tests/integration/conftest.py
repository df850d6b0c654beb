"""Fixtures for the integration tests; the rigs themselves live in live.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from live import run_daemon as _run_daemon


@pytest.fixture
def run_daemon() -> Callable[..., Any]:
    """Run a daemon until `until(run)` holds (or a timeout), then stop it cleanly."""
    return _run_daemon
