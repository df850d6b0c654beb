"""What the LEDs show in each state: `pattern(state, level, t, count)` and nothing else.

Pure: no I/O, no clock reads. The LED driver passes `t` (seconds since the state began),
so every animation starts at the same phase when a state is entered (a blink starts lit),
and the demo can draw the very same frames in a terminal with `render_ansi`.

One table, LOOKS, gives each state a colour and a motion, the way a commercial speaker
does: a reader finds "what does muted look like" in one line, and tests walk the table.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from pivox.core.machine import State

RGB = tuple[int, int, int]


class Motion(enum.Enum):
    OFF = "off"
    SOLID = "solid"
    CHASE = "chase"  # a lit head with a fading tail goes round the ring
    BLINK = "blink"  # all pixels on for the first `duty` of each period, then off
    LEVEL = "level"  # all pixels follow the speech/playback level above a floor


@dataclass(frozen=True)
class Look:
    colour: RGB
    motion: Motion
    period_s: float = 0.0  # CHASE: one turn of the ring; BLINK: on + off
    duty: float = 0.5  # BLINK: lit share of the period
    words: str = ""  # for status, logs and the demo timeline


WHITE: RGB = (200, 200, 200)
CYAN: RGB = (0, 200, 255)
BLUE: RGB = (0, 60, 255)
AMBER: RGB = (255, 140, 0)
RED: RGB = (255, 0, 0)
DARK: RGB = (0, 0, 0)

LOOKS: dict[State, Look] = {
    State.BOOTING: Look(WHITE, Motion.CHASE, period_s=2.0, words="white slow chase"),
    State.IDLE: Look(DARK, Motion.OFF, words="off"),
    State.LISTENING: Look(CYAN, Motion.SOLID, words="cyan solid"),
    State.THINKING: Look(BLUE, Motion.CHASE, period_s=0.8, words="blue spinning"),
    State.SPEAKING: Look(CYAN, Motion.LEVEL, words="cyan pulsing with the voice"),
    State.OFFLINE: Look(AMBER, Motion.BLINK, period_s=2.0, duty=0.5, words="amber slow blink"),
    State.MUTED: Look(RED, Motion.SOLID, words="red solid"),
    State.ERROR: Look(RED, Motion.BLINK, period_s=0.5, duty=0.5, words="red fast blink"),
}



class Alert(enum.Enum):
    """Something the LEDs show over the state while it lasts."""

    RINGING = "ringing"


# A timer or alarm rings: a fast white flash, unlike any state, whatever the state is.
ALERT_LOOKS: dict[Alert, Look] = {
    Alert.RINGING: Look(WHITE, Motion.BLINK, period_s=0.6, duty=0.5,
                        words="white fast flash (a timer or alarm rings)"),
}
Shown = State | Alert  # what the LEDs show: the state, or an alert over it


def shown(state: State, ringing: bool) -> Shown:
    """Ringing overrides the state's pattern while it rings."""
    return Alert.RINGING if ringing else state


def look_of(what: Shown) -> Look:
    return ALERT_LOOKS[what] if isinstance(what, Alert) else LOOKS[what]


LEVEL_FLOOR = 0.25  # SPEAKING at silence stays visibly lit, dimmer than LISTENING
TAIL_SHARE = 0.4  # CHASE: the tail covers this share of the ring (at least one pixel)


def describe(state: Shown) -> str:
    """A few words for what the LEDs show in `state` ("cyan solid")."""
    return look_of(state).words


def pattern(state: Shown, level: float, t: float, count: int) -> tuple[RGB, ...]:
    """`count` colours (0-255 per channel) for `state` at `t` seconds into the state.

    `level` is the speech/playback level, 0..1 (out-of-range and NaN are clamped), and
    only SPEAKING uses it. A single pixel (an RGB LED) cannot show a chase, so a chase
    breathes there instead: every state stays recognisable on any ring size.
    """
    if count <= 0:
        return ()
    look = look_of(state)
    t = t if math.isfinite(t) else 0.0
    scales = _scales(look, _clamp(level), t, count)
    return tuple(_scaled(look.colour, s) for s in scales)


def _scales(look: Look, level: float, t: float, count: int) -> list[float]:
    motion = look.motion
    if motion is Motion.OFF:
        return [0.0] * count
    if motion is Motion.SOLID:
        return [1.0] * count
    if motion is Motion.LEVEL:
        return [LEVEL_FLOOR + (1.0 - LEVEL_FLOOR) * level] * count
    phase = (t % look.period_s) / look.period_s  # 0..1 through the period
    if motion is Motion.BLINK:
        return [1.0 if phase < look.duty else 0.0] * count
    if count == 1:  # CHASE on one pixel: breathe between 20 % and 100 %
        return [0.6 - 0.4 * math.cos(2 * math.pi * phase)]
    head = phase * count
    tail = max(1.0, TAIL_SHARE * count)
    return [max(0.0, 1.0 - ((head - i) % count) / tail) for i in range(count)]


def _clamp(level: float) -> float:
    if not level >= 0.0:  # also catches NaN
        return 0.0
    return min(level, 1.0)


def _scaled(colour: RGB, scale: float) -> RGB:
    r, g, b = colour
    return (round(r * scale), round(g * scale), round(b * scale))


def render_ansi(colours: tuple[RGB, ...] | list[RGB]) -> str:
    """The colours as a row of 24-bit ANSI background blocks, two cells per pixel.

    Ends with a reset, so text printed after it keeps the terminal's own colours.
    """
    if not colours:
        return ""
    cells = "".join(f"\x1b[48;2;{r};{g};{b}m  " for r, g, b in colours)
    return cells + "\x1b[0m"
