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
from typing import TYPE_CHECKING, Any

from pivox.audio import earcons
from pivox.audio.playback import Player
from pivox.core import events as ev
from pivox.core.machine import CONVERSATION, Machine, State
from pivox.daemon.faults import FaultHook

if TYPE_CHECKING:
    from pivox.daemon.alerts import Alerts

log = logging.getLogger("pivox")
COMMANDS = ("status", "mute", "unmute", "toggle_mute", "talk", "volume", "volume_step",
            "announce", "stop", "timers", "alarms", "play")


class Commands:
    def __init__(self, post: Callable[[ev.Event], None], machine: Callable[[], Machine],
                 player: Player, status: Callable[[], dict[str, Any]],
                 spoken_status: Callable[[], str], faults: FaultHook | None = None,
                 alerts: Alerts | None = None) -> None:
        self._post = post
        self._machine = machine
        self._player = player
        self._status = status
        self._spoken_status = spoken_status
        self._faults = faults
        self._alerts = alerts
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
        elif cmd == "announce" and req.get("text") and self._alerts is not None:
            self._alerts.announce(str(req["text"]), now=bool(req.get("now")))
        elif cmd == "announce":
            self._announce()
        elif cmd in ("timers", "alarms", "play") and self._alerts is not None:
            return {"state": self._machine().state.value, **self._clockwork(cmd, req)}
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
        if self._alerts is not None:
            self._alerts.settings_changed()

    def _clockwork(self, cmd: str, req: dict[str, Any]) -> dict[str, Any]:
        """`pivox timers [list|cancel LABEL|stop]`, `pivox alarms [list|cancel LABEL]`,
        `pivox play FILE.wav` ({"file": PATH}). A label that matches nothing is a ValueError."""
        assert self._alerts is not None
        if cmd == "play":
            from pivox.audio.base import DeviceError
            from pivox.audio.wavfile import read_wav

            try:  # a doorbell is short: read on the loop
                pcm = read_wav(str(req["file"]), earcons.RATE)
            except DeviceError as exc:
                raise ValueError(str(exc)) from None
            self._alerts.announce(wav=pcm, now=bool(req.get("now")))
            return {"seconds": round(len(pcm) / 2 / earcons.RATE, 2)}
        action, kind = str(req.get("action") or "list"), cmd.removesuffix("s")
        if action == "stop" and kind == "timer":
            self._post(ev.RingEnd())
        elif action == "cancel":
            self._alerts.cancel(kind, str(req.get("label") or ""))
        elif action != "list":
            raise ValueError(f"unknown action {action!r}: try list, cancel LABEL"
                             + (" or stop" if kind == "timer" else ""))
        snap = self._alerts.snapshot()
        return {cmd: list(snap.timers if kind == "timer" else snap.alarms),
                "ringing": list(snap.ringing)}

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
