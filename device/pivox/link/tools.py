"""Device tools the model may call: declared in `setup`, run here, answered with toolResponse.

Quick device actions are declared NON_BLOCKING where the model supports asynchronous tools
(the conversation goes on while they run) and answered with scheduling SILENT, so the model
does not talk about a volume change; models with synchronous tools get plain declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivox.link.codec import FunctionCall, ToolDeclaration

DECLARATIONS = (
    ToolDeclaration(
        "set_volume", "Set the speaker volume, from 0 (silent) to 10 (loudest).",
        {"type": "OBJECT",
         "properties": {"level": {"type": "INTEGER", "description": "0 to 10"}},
         "required": ["level"]}),
    ToolDeclaration("stop", "Stop speaking at once and end the conversation."),
)
SCHEDULING = {"set_volume": "SILENT", "stop": "SILENT"}


@dataclass
class Device:
    """What the tools may touch, supplied by the daemon."""

    set_volume: Callable[[float], None]
    stop: Callable[[], None]


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
    return {"error": f"unknown function {call.name}"}, scheduling
