"""The state file: a round trip, atomic replacement, and every way it can be unusable
(garbage, truncated JSON, wrong types, no permission, a directory in its place): logged,
moved aside, defaults, never an exception."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pivox.core import schedule as sc
from pivox.home import state as hs

NOW = 1_780_000_000.0


def sample() -> hs.Saved:
    s, _ = sc.add_timer(sc.Schedule(), 180, "pasta", NOW)
    s, _ = sc.add_alarm(s, "07:00", "up", "weekdays", NOW)
    return hs.Saved(volume=0.35, muted=True, schedule=s)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    hs.save(path, sample())
    assert hs.load(path) == sample()
    assert not list(tmp_path.glob(".*tmp")), "the temp file is renamed, not left behind"
    assert oct(path.stat().st_mode & 0o777) == "0o640"


def test_missing_file_is_a_first_start(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    with caplog.at_level(logging.INFO, "pivox.state"):
        assert hs.load(tmp_path / "state.json") == hs.Saved()
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_save_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    """A reader at any moment sees the old file or the new one (rename over)."""
    path = tmp_path / "state.json"
    hs.save(path, hs.Saved(volume=0.1))
    inode = path.stat().st_ino
    hs.save(path, sample())
    assert path.stat().st_ino != inode  # a new file renamed into place, not rewritten
    assert hs.load(path).volume == 0.35


GOOD = hs.encode(sample())
CORRUPT = {
    "garbage": b"\x00\xff\xfe not json at all",
    "truncated": json.dumps(GOOD).encode()[:57],
    "empty": b"",
    "not an object": b"[1, 2, 3]",
    "wrong version": json.dumps({**GOOD, "version": 7}).encode(),
    "volume a string": json.dumps({**GOOD, "volume": "loud"}).encode(),
    "volume out of range": json.dumps({**GOOD, "volume": 4}).encode(),
    "muted a number": json.dumps({**GOOD, "muted": 1}).encode(),
    "timers an object": json.dumps({**GOOD, "timers": {"a": 1}}).encode(),
    "timer due missing": json.dumps({**GOOD, "timers": [{"label": "x", "seconds": 3}]}).encode(),
    "timer due NaN": json.dumps({**GOOD, "timers": [{"label": "x", "seconds": 3,
                                                     "due": float("nan")}]}).encode(),
    "alarm bad time": json.dumps({**GOOD, "alarms": [{"label": "x", "time": "25:00",
                                                      "repeat": "once", "after": 0}]}).encode(),
    "too big": b" " * (hs.MAX_BYTES + 1),
    "deeply nested": b"[" * 60000,
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_file_is_logged_moved_aside_and_defaults_used(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(CORRUPT[case])
    with caplog.at_level(logging.INFO, "pivox.state"):
        assert hs.load(path, now=NOW) == hs.Saved()
    aside = tmp_path / "state.json.corrupt-20260528T202640"
    assert aside.read_bytes() == CORRUPT[case]
    assert not path.exists()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "moved to" in errors[0] and "defaults" in errors[0], errors
    hs.save(path, sample())  # and the speaker can save again afterwards
    assert hs.load(path) == sample()


def test_a_directory_in_its_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "junk").write_text("x")
    with caplog.at_level(logging.ERROR, "pivox.state"):
        assert hs.load(path, now=NOW) == hs.Saved()
    assert (tmp_path / "state.json.corrupt-20260528T202640" / "junk").exists()
    hs.save(path, sample())
    assert hs.load(path) == sample()


def test_twice_in_a_second_keeps_both(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for _ in range(2):
        path.write_bytes(b"junk")
        hs.load(path, now=NOW)
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run the reader as another user")
def test_unreadable_permissions() -> None:
    """Run as `nobody`, as the service would be if the file's owner were wrong: the file
    cannot be opened (root would read it anyway). Outside pytest's root-only temp tree."""
    folder = Path(tempfile.mkdtemp(prefix="pivox-state-"))
    os.chmod(folder, 0o755)
    try:
        _unreadable(folder)
    finally:
        shutil.rmtree(folder)


def _unreadable(folder: Path) -> None:
    os.chown(folder, 65534, 65534)
    path = folder / "state.json"
    hs.save(path, sample())
    os.chmod(path, 0o000)
    code = ("import logging, sys; from pathlib import Path; from pivox.home import state;"
            "logging.basicConfig(stream=sys.stdout, level=logging.INFO);"
            f"print(state.load(Path({str(path)!r}), now={NOW}))")
    out = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                          sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, cwd="/")
    assert out.returncode == 0, out.stderr
    assert "Permission denied" in out.stdout and "moved to" in out.stdout, out.stdout
    assert out.stdout.strip().endswith(repr(hs.Saved()))
    assert (folder / "state.json.corrupt-20260528T202640").exists()


def test_unsaved_directory_is_an_error_for_the_caller(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        hs.save(tmp_path / "missing" / "state.json", sample())


def test_where_it_lives() -> None:
    assert hs.StateConfig().path({}) is None
    assert hs.StateConfig().path({"STATE_DIRECTORY": "/var/lib/pivox"}) == Path(
        "/var/lib/pivox/state.json")
    assert hs.StateConfig("/tmp/x.json").path({"STATE_DIRECTORY": "/a"}) == Path("/tmp/x.json")
