"""Buttons through gpiozero, turned into the same commands the control socket takes.

Talk starts or ends a conversation; mute is the privacy switch; volume up and down step by
a tenth; holding talk for `long_press_s` makes the speaker say its IP address and state.
gpiozero debounces and calls back on its own thread; the callbacks only hand a command to
the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpiozero import Button

log = logging.getLogger("pivox.buttons")
Command = dict[str, Any]


class Buttons:
    def __init__(self, pins: dict[str, int], send: Callable[[Command], None],
                 long_press_s: float = 3.0, bounce_s: float = 0.05,
                 pin_factory: Any = None) -> None:
        """`pins` maps talk, mute, volume_up, volume_down to BCM pins (missing: no button).
        `send` must be safe to call from another thread."""
        self._send = send
        self._buttons: list[Button] = []
        self._held = False
        try:
            for name, pin in pins.items():
                b = Button(pin, bounce_time=bounce_s, hold_time=long_press_s,
                           pin_factory=pin_factory)
                self._buttons.append(b)
                if name == "talk":
                    b.when_held = self._talk_held
                    b.when_released = self._talk_released
                elif name == "mute":
                    b.when_pressed = lambda: send({"cmd": "toggle_mute"})
                elif name == "volume_up":
                    b.when_pressed = lambda: send({"cmd": "volume_step", "step": 0.1})
                elif name == "volume_down":
                    b.when_pressed = lambda: send({"cmd": "volume_step", "step": -0.1})
        except Exception:
            self.close()
            raise

    def _talk_held(self) -> None:
        self._held = True
        self._send({"cmd": "announce"})

    def _talk_released(self) -> None:
        """A short press talks; the release that ends a long press does nothing more."""
        if not self._held:
            self._send({"cmd": "talk"})
        self._held = False

    def close(self) -> None:
        for b in self._buttons:
            b.close()
        self._buttons.clear()
