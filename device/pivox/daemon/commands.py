"""Commands from the control socket and the buttons: one path, on the loop's thread.

Each command turns into a machine event or a setting; unknown ones raise KeyError and bad
values ValueError, which the control socket answers as `{"ok": false, "error": ...}` (and
`pivox` then exits non-zero). The fault command exists only with the debug fault hook on.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from pivox.audio import earcons
from pivox.audio.playback import Player
from pivox.core import events as ev
from pivox.core.machine import CONVERSATION, Machine, State
from pivox.daemon.faults import FaultHook

log = logging.getLogger("pivox")
COMMANDS = ("status", "mute", "unmute", "toggle_mute", "talk", "volume", "volume_step",
            "announce", "stop")


class Commands:
    def __init__(self, post: Callable[[ev.Event], None], machine: Callable[[], Machine],
                 player: Player, status: Callable[[], dict[str, Any]],
                 spoken_status: Callable[[], str], faults: FaultHook | None = None) -> None:
        self._post = post
        self._machine = machine
        self._player = player
        self._status = status
        self._spoken_status = spoken_status
        self._faults = faults
        self._background: set[asyncio.Task[None]] = set()

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """One request (loop thread). Unknown commands raise KeyError, bad values ValueError."""
        cmd = req["cmd"]
        if cmd == "status":
            return self._status()
        if cmd in ("mute", "unmute"):
            self._post(ev.MuteSet(cmd == "mute"))
        elif cmd == "talk":
            self._post(ev.TalkPressed())
        elif cmd == "stop":  # end the conversation, if there is one; never start one
            if self._machine().state in CONVERSATION:
                self._post(ev.TalkPressed())
        elif cmd == "toggle_mute":
            self._post(ev.MuteSet(self._machine().state is not State.MUTED))
        elif cmd in ("volume", "volume_step"):
            self._volume(cmd, req)
        elif cmd == "announce":
            self._announce()
        elif cmd == "fault" and self._faults is not None:
            self._faults.arm(str(req.get("part", "")), str(req.get("mode", "")))
        else:
            raise KeyError(f"unknown command {cmd!r}: try {', '.join(COMMANDS[:5])}, volume")
        return {"state": self._machine().state.value}

    def button(self, req: dict[str, Any]) -> None:
        """A button press: the same path, with failures logged instead of answered."""
        try:
            self.handle(req)
        except (KeyError, ValueError) as exc:
            log.warning("button command failed: %s", exc)

    def _volume(self, cmd: str, req: dict[str, Any]) -> None:
        if cmd == "volume":
            level = float(req["level"])
        else:
            level = round(min(1.0, max(0.0, self._player.volume + float(req["step"]))), 2)
        if not 0.0 <= level <= 1.0 or math.isnan(level):
            raise ValueError("volume level must be from 0.0 to 1.0")
        self._player.volume = level
        if cmd == "volume_step":
            self._player.play(earcons.sound("wake"), "prompt:wake")  # a click at the new level

    def _announce(self) -> None:
        """Say the address and the state, for someone with no screen at hand."""
        text = self._spoken_status()
        log.info("announce: %s", text)
        task = asyncio.ensure_future(self._speak(text))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _speak(self, text: str) -> None:
        pcm = await asyncio.to_thread(earcons.speech, text)  # never block the loop on TTS
        self._player.play(pcm if pcm else earcons.sound("wake"), "prompt:announce")
