"""HIL fixtures: the rig and the reference server (see rig.py and processes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import ServerThread
from rig import PulseRig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[PulseRig]:
    why = PulseRig.available()
    if why:
        pytest.fail(f"the HIL rig cannot run: {why}")
    (tmp_path / "pulse").mkdir()
    r = PulseRig(tmp_path / "pulse")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def name_server() -> Iterator[ServerThread]:
    """A reference server whose reply says the speaker's own wake word."""
    s = ServerThread(reply_dir=Path(__file__).parents[1] / "fixtures" / "replies_with_name")
    yield s
    s.stop()


@pytest.fixture
def server() -> Iterator[ServerThread]:
    s = ServerThread()
    yield s
    s.stop()
