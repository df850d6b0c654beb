"""HIL fixtures: the rig and the reference server (see rig.py and processes.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import ServerThread
from rig import AloopRig, PulseRig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[PulseRig | AloopRig]:
    """PulseAudio by default (CI); PIVOX_HIL=aloop for snd-aloop on a Pi."""
    kind = AloopRig if os.environ.get("PIVOX_HIL") == "aloop" else PulseRig
    why = kind.available()
    if why:
        pytest.fail(f"the HIL rig cannot run: {why}")
    (tmp_path / "pulse").mkdir()
    r = kind(tmp_path / "pulse")
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
