"""The one small state file: timers, alarms, volume and mute, so they survive a power cut.

Written atomically (a temp file beside it, fsync, rename over, fsync the directory), so a
power cut leaves the old file or the new one, never half of either. Read once at start. A
file that cannot be read or makes no sense (garbage, cut short, wrong types, no
permission, a directory in its place) is logged, moved aside as `state.json.corrupt-TIME`,
and the speaker starts with its defaults: it never refuses to start because of it.

`[state] file` names it; empty means systemd's StateDirectory (`$STATE_DIRECTORY`,
/var/lib/pivox for the shipped unit), and with neither nothing persists.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivox.core import schedule as sc

log = logging.getLogger("pivox.state")
VERSION = 1
FILE_NAME = "state.json"
MAX_BYTES = 64 * 1024  # far above MAX_ITEMS entries; a bigger file is not ours


@dataclass(frozen=True)
class StateConfig:
    file: str = field(default="", metadata={
        "expected": "a path for the state file, or empty for $STATE_DIRECTORY/state.json",
        "check": None})

    def path(self, env: dict[str, str] | None = None) -> Path | None:
        """Where the state lives; None when neither the config nor systemd says."""
        if self.file:
            return Path(self.file)
        folder = (os.environ if env is None else env).get("STATE_DIRECTORY", "")
        # systemd may list several directories, colon-separated: the first is ours.
        return Path(folder.split(":")[0]) / FILE_NAME if folder else None


@dataclass(frozen=True)
class Saved:
    volume: float | None = None  # None: the config's [audio.playback] volume
    muted: bool = False
    schedule: sc.Schedule = field(default_factory=sc.Schedule)


def encode(s: Saved) -> dict[str, Any]:
    return {
        "version": VERSION,
        "volume": s.volume,
        "muted": s.muted,
        "timers": [{"label": t.label, "seconds": t.seconds, "due": t.due}
                   for t in s.schedule.timers],
        "alarms": [{"label": a.label, "time": a.time, "repeat": a.repeat, "after": a.after}
                   for a in s.schedule.alarms],
    }


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{where}: expected a number, got {v!r}")
    return float(v)


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{where}: expected a string, got {v!r}")
    return v


def _items(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = obj.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"{key}: expected a list of objects")
    if len(items) > sc.MAX_ITEMS:
        raise ValueError(f"{key}: more than {sc.MAX_ITEMS}")
    return items


def decode(obj: Any) -> Saved:
    """The saved state from parsed JSON. Raises ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if obj.get("version") != VERSION:
        raise ValueError(f"version: expected {VERSION}, got {obj.get('version')!r}")
    volume = obj.get("volume")
    if volume is not None:
        volume = _num(volume, "volume")
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"volume: expected 0.0 to 1.0, got {volume!r}")
    muted = obj.get("muted", False)
    if not isinstance(muted, bool):
        raise ValueError(f"muted: expected true or false, got {muted!r}")
    timers = tuple(sc.Timer(_str(t.get("label"), "timers.label"),
                            _num(t.get("seconds"), "timers.seconds"),
                            _num(t.get("due"), "timers.due"))
                   for t in _items(obj, "timers"))
    alarms = []
    for a in _items(obj, "alarms"):
        alarm = sc.Alarm(_str(a.get("label"), "alarms.label"),
                         _str(a.get("time"), "alarms.time"),
                         _str(a.get("repeat"), "alarms.repeat"),
                         _num(a.get("after"), "alarms.after"))
        try:
            sc.parse_time(alarm.time)
            sc.repeat_days(alarm.repeat)
        except sc.ScheduleError as exc:
            raise ValueError(f"alarms: {exc}") from None
        alarms.append(alarm)
    return Saved(volume, muted, sc.Schedule(timers, tuple(alarms)))


def load(path: Path | None, now: float | None = None) -> Saved:
    """The saved state, or the defaults (a missing file is a first start, not a problem).
    Anything else that goes wrong is logged and the file moved aside."""
    if path is None:
        log.info("no state file ([state] file unset and no StateDirectory): timers, alarms "
                 "and volume last until the next restart")
        return Saved()
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES} bytes")
        saved = decode(json.loads(raw.decode("utf-8")))
    except FileNotFoundError:
        return Saved()
    except (OSError, ValueError, RecursionError) as exc:  # JSON and Unicode errors are ValueErrors
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        aside = _move_aside(path, time.time() if now is None else now)
        log.error("state file %s unusable (%s): starting with defaults; %s", path,
                  why[:200], f"moved to {aside}" if aside else "could not move it aside")
        return Saved()
    log.info("state read from %s: %d timers, %d alarms", path, len(saved.schedule.timers),
             len(saved.schedule.alarms))
    return saved


def _move_aside(path: Path, now: float) -> Path | None:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        os.rename(path, aside)
    except OSError:
        return None
    return aside


def save(path: Path, s: Saved) -> None:
    """Write atomically: temp file, fsync, rename over, fsync the directory. Raises OSError."""
    data = json.dumps(encode(s), indent=1, sort_keys=True).encode() + b"\n"
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
