"""One wording for every supervisor check: a part that went quiet says what, and how long.

The daemon's parts (capture, playback, the frame pump, the link, the alert scheduler) each
answer the supervisor's check with "" or one line for the journal and the withheld watchdog;
the same words for the same fault whichever part has it. Time is an argument.
"""

from __future__ import annotations


def stale(what: str, beat: float, now: float, limit_s: float) -> str:
    """"" while `beat` is within `limit_s` of `now`, else what went quiet and for how long."""
    quiet = now - beat
    return f"no {what} for {quiet:.1f} s" if quiet > limit_s else ""
