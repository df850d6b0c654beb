"""Device tools the model may call: declared in `setup`, run here, answered with toolResponse.

Quick device actions are declared NON_BLOCKING where the model supports asynchronous tools
(the conversation goes on while they run) and answered with scheduling SILENT, so the model
does not talk about a volume change; models with synchronous tools get plain declarations.
`get_local_time` is the exception: the model needs its answer to speak, so it is BLOCKING,
and it reads the clock when called, since a session (and its resumptions) can last hours.
The home's location and units go in the system instruction; they do not change.
Timers and alarms run on the device (`Clockwork`, daemon/alerts.py), so they ring with no
network; they are non-blocking and answered WHEN_IDLE, so the model confirms when free.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from pivox.link.codec import FunctionCall, ToolDeclaration

if TYPE_CHECKING:
    from pivox.config import HomeConfig

DECLARATIONS = (
    ToolDeclaration(
        "set_volume", "Set the speaker volume, from 0 (silent) to 10 (loudest).",
        {"type": "OBJECT",
         "properties": {"level": {"type": "INTEGER", "description": "0 to 10"}},
         "required": ["level"]}),
    ToolDeclaration("stop", "Stop speaking at once and end the conversation."),
)
LOCAL_TIME = ToolDeclaration(
    "get_local_time", "The current local date, time and time zone where the speaker is. "
    "Call it whenever the answer depends on the date or the time of day.", blocking=True)
_LABEL = {"type": "STRING", "description": "what it is for, e.g. \"pasta\"; may be empty"}
_WHICH = {"type": "OBJECT", "properties": {"label": {
    "type": "STRING", "description": "the label it was set with; empty or \"all\" for all"}}}
TIMERS = (
    ToolDeclaration(
        "set_timer", "Start a countdown timer on the speaker. It rings on the speaker when it "
        "is done, even without a network. A label in use is changed to the new length.",
        {"type": "OBJECT", "properties": {
            "seconds": {"type": "INTEGER", "description": "the length, 1 to 86400 seconds"},
            "label": _LABEL}, "required": ["seconds"]}),
    ToolDeclaration("cancel_timer", "Cancel a timer before it rings.", _WHICH),
    ToolDeclaration("list_timers", "The timers that are running and the time left on each."),
    ToolDeclaration(
        "set_alarm", "Set an alarm on the speaker at a local time of day.",
        {"type": "OBJECT", "properties": {
            "time": {"type": "STRING", "description": "HH:MM, 24-hour clock, local time"},
            "label": _LABEL,
            "repeat": {"type": "STRING", "description": "once (default), daily, weekdays, "
                       "weekends, or days such as \"mon,wed,fri\""}},
         "required": ["time"]}),
    ToolDeclaration("cancel_alarm", "Cancel an alarm.", _WHICH),
    ToolDeclaration("list_alarms", "The alarms that are set and when each rings next."),
)
# The conversation goes on while these run; the model confirms when it is next idle.
SCHEDULING = {"set_volume": "SILENT", "stop": "SILENT", "get_local_time": "WHEN_IDLE",
              **{d.name: "WHEN_IDLE" for d in TIMERS}}


def declarations() -> tuple[ToolDeclaration, ...]:
    """What the model may call: the device tools, the local time, timers and alarms."""
    return (*DECLARATIONS, LOCAL_TIME, *TIMERS)


def with_home(instruction: str, home: HomeConfig) -> str:
    """The system instruction, told where the speaker is and which units to use."""
    parts = [instruction.strip()] if instruction.strip() else []
    if home.location:
        parts.append(f"The speaker is in {home.location}; questions about the weather, "
                     "places and events are about there unless the user says otherwise.")
    parts.append(f"Use {home.units} units. For the date or the time, call get_local_time.")
    return " ".join(parts)


def zone(name: str) -> tzinfo:
    """The configured IANA zone, or the system's when `name` is empty."""
    if name:
        return zoneinfo.ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    assert local is not None
    return local


def local_time(name: str, now: float) -> dict[str, str]:
    """The date and time at `now` (epoch seconds) in zone `name`, as the model reads it."""
    t = datetime.fromtimestamp(now, zone(name))
    return {"date": t.strftime("%A %d %B %Y"), "time": t.strftime("%H:%M"),
            "timezone": name or (t.tzname() or "local"), "iso": t.isoformat(timespec="seconds")}


class Clockwork(Protocol):
    """The timers and alarms (daemon/alerts.py). Each returns the model's answer, or
    raises ScheduleError (a ValueError) with words for the model."""

    def set_timer(self, seconds: object, label: str) -> dict[str, Any]:
        """`seconds` as the model sent it: the schedule validates it."""
        ...

    def set_alarm(self, time: str, label: str, repeat: str) -> dict[str, Any]: ...

    def cancel(self, kind: str, label: str) -> dict[str, Any]: ...

    def listing(self, kind: str) -> dict[str, Any]: ...


@dataclass
class Device:
    """What the tools may touch, supplied by the daemon."""

    set_volume: Callable[[float], None]
    stop: Callable[[], None]
    timezone: str = ""  # [home] timezone; "" is the system's
    clock: Callable[[], float] = time.time  # read at call time, never at connect
    clockwork: Clockwork | None = None  # timers and alarms


def run(call: FunctionCall, device: Device) -> tuple[dict[str, Any], str]:
    """Carry out one call. Returns the response body and its scheduling."""
    scheduling = SCHEDULING.get(call.name, "WHEN_IDLE")
    if call.name == "set_volume":
        try:
            level = int(call.args["level"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return {"error": "level must be an integer from 0 to 10"}, scheduling
        level = max(0, min(10, level))
        device.set_volume(level / 10)
        return {"result": f"volume set to {level}"}, scheduling
    if call.name == "stop":
        device.stop()
        return {"result": "stopped"}, scheduling
    if call.name == "get_local_time":
        return {"result": local_time(device.timezone, device.clock())}, scheduling
    if call.name in SCHEDULING and device.clockwork is not None:
        try:
            return _clockwork(call, device.clockwork), scheduling
        except ValueError as exc:  # ScheduleError: bad seconds, time or repeat
            return {"error": str(exc)}, scheduling
    return {"error": f"unknown function {call.name}"}, scheduling


def _clockwork(call: FunctionCall, clock: Clockwork) -> dict[str, Any]:
    args = call.args if isinstance(call.args, dict) else {}
    label = str(args.get("label") or "")
    if call.name == "set_timer":
        return clock.set_timer(args.get("seconds"), label)
    if call.name == "set_alarm":
        return clock.set_alarm(str(args.get("time", "")), label,
                               str(args.get("repeat") or "once"))
    kind = "timer" if call.name.endswith("timer") or call.name.endswith("timers") else "alarm"
    if call.name.startswith("cancel_"):
        return clock.cancel(kind, label)
    return clock.listing(kind)
