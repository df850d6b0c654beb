"""Device tools the model may call: declared in `setup`, run here, answered with toolResponse.

Quick device actions are declared NON_BLOCKING where the model supports asynchronous tools
(the conversation goes on while they run) and answered with scheduling SILENT, so the model
does not talk about a volume change; models with synchronous tools get plain declarations.
`get_local_time` is the exception: the model needs its answer to speak, so it is BLOCKING,
and it reads the clock when called, since a session (and its resumptions) can last hours.
The home's location and units go in the system instruction; they do not change.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

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
SCHEDULING = {"set_volume": "SILENT", "stop": "SILENT", "get_local_time": "WHEN_IDLE"}


def declarations() -> tuple[ToolDeclaration, ...]:
    """What the model may call: the device tools and the local time."""
    return (*DECLARATIONS, LOCAL_TIME)


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


@dataclass
class Device:
    """What the tools may touch, supplied by the daemon."""

    set_volume: Callable[[float], None]
    stop: Callable[[], None]
    timezone: str = ""  # [home] timezone; "" is the system's
    clock: Callable[[], float] = time.time  # read at call time, never at connect


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
    return {"error": f"unknown function {call.name}"}, scheduling
