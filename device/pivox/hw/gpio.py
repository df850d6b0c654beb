"""LEDs through gpiozero: `LedRing` moves colours to pins, `LedDriver` animates them.

The pattern itself is `pivox.core.leds.pattern`; this module only decides how many pixels
the hardware has and how a colour becomes pin values. The pin factory is gpiozero's
business (GPIOZERO_PIN_FACTORY, or the caller sets `Device.pin_factory`); tests use its
MockFactory with the same device classes as a Pi.

Pin writes are microsecond-scale register or ioctl calls, so `show` runs on the event
loop's thread; the driver catches everything, because an LED fault must never stop audio.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gpiozero import PWMLED, RGBLED, SPIDevice

from pivox.core.leds import RGB, Motion, Shown, look_of, pattern

log = logging.getLogger(__name__)

KINDS = ("none", "gpio", "rgb", "apa102")


class LedSettings(Protocol):
    """What LedRing needs from config (pivox.config.LedConfig fits)."""

    @property
    def kind(self) -> str: ...
    @property
    def pins(self) -> tuple[int, ...]: ...
    @property
    def active_high(self) -> bool: ...
    @property
    def count(self) -> int: ...
    @property
    def brightness(self) -> int: ...


def luminance(colour: RGB) -> float:
    """Rec. 709 relative luminance, 0..1: how bright a colour looks on a one-colour LED.

    States then differ by brightness on plain LEDs (cyan listening is bright, blue
    thinking is dim), which a maximum-channel rule would flatten.
    """
    r, g, b = colour
    return min(1.0, max(0.0, (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0))


class LedRing:
    """The speaker's LEDs as `count` pixels.

    kind "gpio": one PWMLED per pin, each pixel's luminance as its brightness.
    kind "rgb": one RGBLED on pins (red, green, blue), showing the first colour.
    kind "apa102": a ring of `count` APA102 pixels on SPI0 (the ReSpeaker HATs' ring),
    at `brightness` (0-31, the chips' own global current).
    kind "none": no pixels; `show` does nothing.

    Raises ValueError for a kind or pin list that cannot work, and gpiozero's errors
    (BadPinFactory, pin in use) as they come: the caller decides whether to run without.
    """

    def __init__(self, kind: str = "none", pins: Sequence[int] = (), active_high: bool = True,
                 pin_factory: Any = None, count: int = 12, brightness: int = 8) -> None:
        if kind not in KINDS:
            raise ValueError(f"LED kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind == "rgb" and len(pins) != 3:
            raise ValueError(f"LED kind rgb needs 3 pins (red, green, blue), got {list(pins)}")
        self.kind = kind
        self._leds: list[PWMLED] = []
        self._rgb: RGBLED | None = None
        self._apa: Apa102 | None = None
        self._shown: tuple[RGB, ...] | None = None
        opts = {"active_high": active_high, "pin_factory": pin_factory}
        try:
            if kind == "gpio":
                for pin in pins:
                    self._leds.append(PWMLED(pin, **opts))
            elif kind == "rgb":
                self._rgb = RGBLED(*pins, pwm=True, **opts)
            elif kind == "apa102":
                self._apa = Apa102(count, brightness, pin_factory=pin_factory)
        except BaseException:
            self.close()  # release the pins already claimed
            raise
        self.count = {"gpio": len(self._leds), "rgb": 1, "apa102": count}.get(kind, 0)

    @classmethod
    def from_config(cls, cfg: LedSettings, pin_factory: Any = None) -> LedRing:
        return cls(cfg.kind, cfg.pins, cfg.active_high, pin_factory=pin_factory,
                   count=cfg.count, brightness=cfg.brightness)

    def show(self, colours: Sequence[RGB]) -> None:
        """Light the pixels with the first `count` colours; missing ones go dark."""
        frame = tuple(colours[: self.count])
        if frame == self._shown:
            return  # unchanged: no pin writes (a solid state costs nothing per frame)
        if self._rgb is not None:
            r, g, b = frame[0] if frame else (0, 0, 0)
            self._rgb.color = (_unit(r), _unit(g), _unit(b))
        for i, led in enumerate(self._leds):
            led.value = luminance(frame[i]) if i < len(frame) else 0.0
        if self._apa is not None:
            self._apa.show(frame)
        self._shown = frame

    def close(self) -> None:
        """Release the pins (gpiozero turns the outputs off). Safe to call twice."""
        for led in self._leds:
            led.close()
        self._leds.clear()
        if self._rgb is not None:
            self._rgb.close()
            self._rgb = None
        if self._apa is not None:
            self._apa.show(())
            self._apa.close()
            self._apa = None
        self._shown = None


class Apa102(SPIDevice):  # type: ignore[misc]  # gpiozero ships no type information
    """APA102 pixels on SPI: a start frame of zeros, per pixel 0xE0|brightness then blue,
    green, red, and an end frame that clocks the data through the whole chain."""

    def __init__(self, count: int, brightness: int = 8, **spi_args: Any) -> None:
        super().__init__(**spi_args)
        self.count = count
        self.brightness = max(0, min(31, brightness))

    def frame(self, colours: Sequence[RGB]) -> list[int]:
        words = [0, 0, 0, 0]
        for i in range(self.count):
            r, g, b = colours[i] if i < len(colours) else (0, 0, 0)
            words += [0xE0 | self.brightness, b, g, r]
        return words + [0xFF] * ((self.count + 15) // 16)

    def show(self, colours: Sequence[RGB]) -> None:
        self._spi.transfer(self.frame(colours))


@dataclass(frozen=True)
class LedSnapshot:
    colours: tuple[RGB, ...]  # the latest frame
    frames: int
    errors: int  # frames that failed to show


def _unit(channel: int) -> float:
    return min(1.0, max(0.0, channel / 255.0))


class LedDriver:
    """Animates a LedRing from the daemon's state at about `hz` frames a second while the
    pattern moves, and not at all while it stands still.

    A solid or dark state is drawn once and then the driver sleeps until `poke` (the
    daemon pokes it on every state change); a blink wakes only at its edges; a chase or
    the speaking pulse at `hz`. `show` is called only when the colours change. So an
    idle speaker costs its LEDs nothing, and a speaker without LEDs draws each state's
    first frame only (for status). `last_colours` is the latest frame (for status
    and the demo), `frames` counts frames shown, `errors` failed ones. Playback level is
    smoothed with an instant rise and a short release, so the speaking pulse follows
    syllables instead of flickering with each audio period.
    """

    RELEASE_S = 0.15  # level decay time constant
    DEFAULT_PIXELS = 12  # drawn for status and the demo when the ring has no pixels

    def __init__(self, ring: LedRing, hz: float = 20.0) -> None:
        self.ring = ring
        self.period_s = 1.0 / hz
        # The pattern is drawn for the ring's own size: a one-pixel RGB LED gets the
        # one-pixel form of each animation, not the first pixel of a bigger ring.
        self.pixels = ring.count or self.DEFAULT_PIXELS
        self.last_colours: tuple[RGB, ...] = ()
        self.frames = 0
        self.errors = 0
        self._state: Shown | None = None
        self._since = 0.0
        self._level = 0.0
        self._at = 0.0
        self._poked: asyncio.Event | None = None

    def snapshot(self) -> LedSnapshot:
        return LedSnapshot(self.last_colours, self.frames, self.errors)

    def frame(self, state: Shown, level: float, now: float) -> tuple[RGB, ...]:
        """Colours for `now`, tracking when the state began and the smoothed level."""
        if state is not self._state:
            self._state, self._since = state, now
        decay = math.exp(-max(0.0, now - self._at) / self.RELEASE_S)
        self._level = max(level if level >= 0.0 else 0.0, self._level * decay)
        self._at = now
        return pattern(state, self._level, now - self._since, self.pixels)

    def poke(self) -> None:
        """The state changed: draw now, not at the next animation step (loop thread)."""
        if self._poked is not None:
            self._poked.set()

    def observe(self, kind: str, _data: object) -> None:
        """A daemon observer: every state change pokes the driver."""
        if kind == "state":
            self.poke()

    def next_change_s(self, state: Shown, now: float) -> float | None:
        """Seconds until the pattern can next change by itself; None: not until the state
        does (a solid or dark state)."""
        look = look_of(state)
        if look.motion in (Motion.OFF, Motion.SOLID) or not self.ring.count:
            return None  # standing still, or no pixels to move: a state's first frame
        if look.motion is Motion.BLINK:
            phase = (now - self._since) % look.period_s
            edge = look.duty * look.period_s
            return (edge if phase < edge else look.period_s) - phase + 0.001
        return self.period_s

    async def run(self, get_state: Callable[[], tuple[Shown, float]],
                  clock: Callable[[], float] = time.monotonic,
                  stop: asyncio.Event | None = None) -> None:
        """Show frames until cancelled or `stop` is set. Never raises for an LED fault:
        the first one is logged with its traceback, later ones only counted."""
        logged = False
        poked = self._poked = asyncio.Event()
        stopper = asyncio.create_task(self._poke_on(stop)) if stop is not None else None
        try:
            while stop is None or not stop.is_set():
                wait: float | None = self.period_s
                poked.clear()
                try:
                    state, level = get_state()
                    now = clock()
                    colours = self.frame(state, level, now)
                    if colours != self.last_colours or not self.frames:
                        self.ring.show(colours)
                        self.frames += 1
                    self.last_colours = colours
                    wait = self.next_change_s(state, now)
                except Exception:
                    self.errors += 1
                    if not logged:
                        logged = True
                        log.exception("LED frame failed; LEDs may be stale, audio carries on")
                # A timer that sets the event, not wait_for: no task made per frame.
                timer = None if wait is None else \
                    asyncio.get_running_loop().call_later(wait, poked.set)
                try:
                    await poked.wait()
                finally:
                    if timer is not None:
                        timer.cancel()
        finally:
            if stopper is not None:
                stopper.cancel()

    async def _poke_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.poke()
