"""Timers and alarms: what is set, what rings when, what was missed. Pure.

Time is an argument (epoch seconds, `now`), and the zone is passed in, so a test can walk
a fake clock across a daylight-saving change. A timer is a length and a label, due at
`now + seconds`. An alarm is a wall-clock time, a label and a repeat rule, due at its next
occurrence in the configured zone after the moment it was set (or last rang):

- a time the clocks skip (02:30 on a spring-forward night) rings when the clocks say the
  same distance past the change (03:30), once;
- a time the clocks pass twice (01:30 on a fall-back night) rings the first time only.

Epoch times survive a restart; a monotonic clock would not. At start, something that came
due while the speaker was off rings once if it is under `MISSED_GRACE_S` late, and is
reported missed otherwise. Ringing ends by itself after `RING_S`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo

RING_S = 300.0  # a ring nobody stops ends by itself after five minutes
MISSED_GRACE_S = 600.0  # due this long before start: missed, not rung
MAX_TIMER_S = 24 * 3600.0
MAX_ITEMS = 32  # timers plus alarms: a bound on the state file and on the model
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REPEATS = {"once": (), "daily": tuple(range(7)), "weekdays": (0, 1, 2, 3, 4),
           "weekends": (5, 6)}
_TIME = re.compile(r"^\s*(\d{1,2})[:.h](\d{2})(?::(\d{2}))?\s*$")


class ScheduleError(ValueError):
    """A request the schedule refuses, phrased for the model and the command line."""


@dataclass(frozen=True)
class Timer:
    label: str
    seconds: float  # as set, for "a 3 minute timer"
    due: float  # epoch seconds


@dataclass(frozen=True)
class Alarm:
    label: str
    time: str  # "HH:MM", wall clock in the configured zone
    repeat: str  # "once", "daily", "weekdays", "weekends" or days: "mon,wed,fri"
    after: float  # epoch seconds: the alarm rings at its first occurrence after this


@dataclass(frozen=True)
class Fired:
    kind: str  # "timer" or "alarm"
    label: str
    due: float
    late_s: float  # how long after its due time it was noticed


@dataclass(frozen=True)
class Schedule:
    timers: tuple[Timer, ...] = ()
    alarms: tuple[Alarm, ...] = ()


# ------------------------------------------------------------------ parsing


def parse_time(text: str) -> tuple[int, int]:
    """"7:05", "07:05", "07:05:00", "7.05" or "7h05" -> (7, 5). Raises ScheduleError."""
    m = _TIME.match(str(text))
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ScheduleError(f"time must be HH:MM on a 24-hour clock, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def repeat_days(repeat: str) -> tuple[int, ...]:
    """The weekdays (Monday = 0) an alarm rings on; () for once. Raises ScheduleError."""
    rule = str(repeat).strip().lower() or "once"
    if rule in REPEATS:
        return REPEATS[rule]
    names = [d.strip()[:3] for d in rule.split(",") if d.strip()]
    if not names or any(d not in DAYS for d in names):
        raise ScheduleError(f"repeat must be once, daily, weekdays, weekends or days such "
                            f"as \"mon,wed,fri\", got {repeat!r}")
    return tuple(sorted({DAYS.index(d) for d in names}))


def _normal_repeat(repeat: str) -> str:
    rule = str(repeat).strip().lower() or "once"
    if rule in REPEATS:
        return rule
    return ",".join(DAYS[d] for d in repeat_days(rule))


# ------------------------------------------------------------------ when


def occurrence(alarm: Alarm, after: float, zone: tzinfo) -> float | None:
    """The alarm's first ring strictly after `after` (epoch seconds); None: never again.

    Wall times are built with fold=0: a skipped time lands the gap's length later, a
    repeated one at its first pass; the second pass of a repeated time is never a
    candidate, so a daily 01:30 rings once on a fall-back night.
    """
    hour, minute = parse_time(alarm.time)
    days = repeat_days(alarm.repeat)
    start: date = datetime.fromtimestamp(after, zone).date()
    for offset in range(8):
        day = start + timedelta(days=offset)
        if days and day.weekday() not in days:
            continue
        at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
        if at > after:
            return at
    return None  # unreachable for a valid rule: every rule has a day within a week


def alarm_due(alarm: Alarm, zone: tzinfo) -> float:
    due = occurrence(alarm, alarm.after, zone)
    assert due is not None
    return due


def next_due(s: Schedule, zone: tzinfo) -> float | None:
    """When the next timer or alarm rings; None when nothing is set."""
    dues = [t.due for t in s.timers] + [alarm_due(a, zone) for a in s.alarms]
    return min(dues) if dues else None


# ------------------------------------------------------------------ changes


def _check_label(label: str) -> str:
    text = " ".join(str(label).split())[:40]
    return text


def _free_label(taken: set[str], base: str) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


def _room(s: Schedule) -> None:
    if len(s.timers) + len(s.alarms) >= MAX_ITEMS:
        raise ScheduleError(f"at most {MAX_ITEMS} timers and alarms at once")


def add_timer(s: Schedule, seconds: object, label: str, now: float) -> tuple[Schedule, Timer]:
    """A timer `seconds` from `now`. A label in use is replaced (the user changed it);
    unlabelled timers are numbered ("timer", "timer 2"). Raises ScheduleError."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | str):
        raise ScheduleError(f"seconds must be a number, got {seconds!r}")
    try:
        secs = float(seconds)
    except ValueError:
        raise ScheduleError(f"seconds must be a number, got {seconds!r}") from None
    if not 1 <= secs <= MAX_TIMER_S:
        raise ScheduleError(f"seconds must be from 1 to {MAX_TIMER_S:.0f}, got {seconds!r}")
    name = _check_label(label)
    kept = tuple(t for t in s.timers if not name or t.label != name)
    if not name:
        name = _free_label({t.label for t in kept}, "timer")
    _room(replace(s, timers=kept))
    timer = Timer(name, secs, now + secs)
    return replace(s, timers=tuple(sorted((*kept, timer), key=lambda t: t.due))), timer


def add_alarm(s: Schedule, time: str, label: str, repeat: str, now: float
              ) -> tuple[Schedule, Alarm]:
    """An alarm at wall time `time` from `now` on. Same label rules as timers."""
    hour, minute = parse_time(time)
    rule = _normal_repeat(repeat)
    name = _check_label(label)
    kept = tuple(a for a in s.alarms if not name or a.label != name)
    if not name:
        name = _free_label({a.label for a in kept}, "alarm")
    _room(replace(s, alarms=kept))
    alarm = Alarm(name, f"{hour:02d}:{minute:02d}", rule, now)
    return replace(s, alarms=(*kept, alarm)), alarm


def cancel(s: Schedule, kind: str, label: str) -> tuple[Schedule, tuple[str, ...]]:
    """Remove the timers (or alarms) named `label`, or all of them for "" or "all".
    Returns the new schedule and the labels removed (empty: nothing matched)."""
    name = _check_label(label).lower()
    every = name in ("", "all")
    if kind == "timer":
        gone = tuple(t.label for t in s.timers if every or t.label.lower() == name)
        return replace(s, timers=tuple(t for t in s.timers if t.label not in gone)), gone
    gone = tuple(a.label for a in s.alarms if every or a.label.lower() == name)
    return replace(s, alarms=tuple(a for a in s.alarms if a.label not in gone)), gone


def due(s: Schedule, now: float, zone: tzinfo) -> tuple[Schedule, list[Fired]]:
    """Everything due at `now`, in the order it came due: timers leave the schedule, an
    alarm that repeats moves on to its next occurrence, one that does not leaves."""
    fired: list[Fired] = []
    timers = []
    for t in s.timers:
        if t.due <= now:
            fired.append(Fired("timer", t.label, t.due, now - t.due))
        else:
            timers.append(t)
    alarms = []
    for a in s.alarms:
        at = alarm_due(a, zone)
        if at > now:
            alarms.append(a)
            continue
        fired.append(Fired("alarm", a.label, at, now - at))
        if a.repeat != "once":
            # From now, not from `at`: occurrences passed while off are not rung late.
            alarms.append(replace(a, after=max(at, now)))
    fired.sort(key=lambda f: (f.due, f.label))
    return Schedule(tuple(timers), tuple(alarms)), fired


def at_start(s: Schedule, now: float, zone: tzinfo
             ) -> tuple[Schedule, list[Fired], list[Fired]]:
    """What to do with a schedule read back at start: (schedule, ring now, missed).

    Anything that came due while the speaker was off rings once now if it is under
    `MISSED_GRACE_S` late; older ones are only reported.
    """
    s, fired = due(s, now, zone)
    ring = [f for f in fired if f.late_s < MISSED_GRACE_S]
    missed = [f for f in fired if f.late_s >= MISSED_GRACE_S]
    return s, ring, missed


# ------------------------------------------------------------------ words


def spoken_length(seconds: float) -> str:
    """ "3 minutes", "1 hour 30 minutes", "45 seconds": for the model and the journal."""
    secs = round(seconds)
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        n, secs = divmod(secs, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def listing(s: Schedule, now: float, zone: tzinfo) -> dict[str, list[dict[str, object]]]:
    """Timers and alarms as plain data, for status, the CLI and the model."""
    timers: list[dict[str, object]] = [
        {"label": t.label, "seconds": t.seconds, "remaining_s": max(0, round(t.due - now)),
         "due": datetime.fromtimestamp(t.due, zone).isoformat(timespec="seconds")}
        for t in sorted(s.timers, key=lambda t: t.due)]
    alarms: list[dict[str, object]] = [
        {"label": a.label, "time": a.time, "repeat": a.repeat,
         "next": datetime.fromtimestamp(alarm_due(a, zone), zone).isoformat(timespec="seconds")}
        for a in sorted(s.alarms, key=lambda a: alarm_due(a, zone))]
    return {"timers": timers, "alarms": alarms}
