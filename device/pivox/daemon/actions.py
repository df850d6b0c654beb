"""Carries out the machine's actions on the parts, and the model's tool calls.

The machine decides; this module only does: the barge-in flush is `FlushPlayback` meeting
`Player.flush`, the pre-roll is `StartUplink` taking the capture ring. With local turn
detection the user's turn (`UserActivity`) becomes activityStart / activityEnd, and audio
outside a turn waits in a short lead-in ring, so the turn opens just before the speech
that opened it (the detector needs a moment to be sure) and the model hears only turns.
Tool calls wait
`TOOL_GRACE_S` before they run, so a `toolCallCancellation` that follows on the heels of
its call (the user spoke over it) cancels it for real: it neither runs nor is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from pivox.audio import earcons
from pivox.audio.capture import Capture
from pivox.audio.playback import Player
from pivox.core import events as ev
from pivox.link import tools
from pivox.link.base import FunctionCall, RealtimeLink, ToolCall, ToolCallCancelled
from pivox.wake.base import WakeEngine

if TYPE_CHECKING:
    from pivox.daemon.alerts import Alerts

log = logging.getLogger("pivox")
TOOL_GRACE_S = 0.05
LEAD_IN_FRAMES = 40  # 0.8 s of 20 ms frames before the detector said speech started
REMEMBER_CALLS = 64  # ids kept to recognise a late cancellation


class ActionRunner:
    def __init__(self, player: Player, capture: Capture, link: RealtimeLink,
                 wake: WakeEngine, post: Callable[[ev.Event], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._player = player
        self._capture = capture
        self._link = link
        self._wake = wake
        self._post = post
        self._loop = loop
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self.uplink_frames = 0
        self.tools_run = 0
        self.tools_cancelled = 0
        self.in_conversation: Callable[[], bool] = lambda: False
        self.local_turns = False  # [conversation] turn_detection = "local"
        self.timezone = ""  # [home] timezone, for get_local_time ("" = the system's)
        self.alerts: Alerts | None = None  # timers, alarms, announcements (daemon/alerts.py)
        self._turn_open = False  # the machine's UserActivity
        self._start_sent = False  # activityStart went out for it
        self._lead_in: deque[tuple[bytes, float | None]] = deque(maxlen=LEAD_IN_FRAMES)

    def do(self, action: ev.Action) -> None:
        match action:
            case ev.Play(pcm):
                self._player.play(pcm, "reply")
            case ev.FlushPlayback():
                self._player.flush()
            case ev.FinishPlayback():
                self._player.finish()
            case ev.PlayPrompt(name):
                self._player.play(earcons.sound(name), f"prompt:{name}")
            case ev.OpenLink():
                self._link.want(True)
            case ev.CloseLink():
                self._link.want(False)
            case ev.StartUplink():
                for pcm in self._capture.start_streaming():  # the pre-roll first
                    self.send_up(pcm)
            case ev.StopUplink():
                self._capture.stop_streaming()
                self._lead_in.clear()
                if not self.local_turns:  # audioStreamEnd is for automatic detection only
                    self._link.send_audio_end()
            case ev.UserActivity(on) if self.local_turns:
                self._turn_open = on
                if not on and self._start_sent:
                    self._start_sent = False
                    self._link.send_activity(False)
            case ev.SetMute(on):
                self._capture.set_muted(on)
            case ev.SetReplying(on):
                self._wake.stop_armed = on
                self._capture.replying = on
            case ev.ExpectReply():
                self._link.expect_reply()
            case ev.StartRinging(label) if self.alerts is not None:
                self.alerts.start_ringing(label)
            case ev.StopRinging() if self.alerts is not None:
                self.alerts.stop_ringing()
            case ev.SendText(text) if self.alerts is not None:
                self.alerts.send_text(text)
            case ev.SayLocally(text) if self.alerts is not None:
                self.alerts.say_locally(text)
            case ev.ReportProblem(kind, detail):
                log.warning("%s problem: %s", kind, detail, extra={"PIVOX_ERROR_KIND": kind})

    def send_up(self, pcm: bytes, captured_at: float | None = None) -> None:
        """A frame the model may hear. With local turn detection a turn opens (activityStart,
        then the lead-in) only once frames flow, so a turn opened while the microphone was
        held back from the model (half duplex) opens when it is heard again."""
        if self.local_turns:
            if not self._turn_open:
                self._lead_in.append((pcm, captured_at))
                return
            if not self._start_sent:
                self._start_sent = True
                self._link.send_activity(True)
                for old, t in self._lead_in:
                    self._link.send_audio(old, t)
                    self.uplink_frames += 1
                self._lead_in.clear()
        self._link.send_audio(pcm, captured_at)
        self.uplink_frames += 1

    # ------------------------------------------------------------ tools

    def tool_call(self, event: ToolCall) -> None:
        for call in event.calls:
            if call.id in self._pending or call.id in self._done:
                continue  # a repeated call: it runs once
            self._pending[call.id] = self._loop.call_later(TOOL_GRACE_S, self._run_tool, call)

    def tool_cancelled(self, event: ToolCallCancelled) -> None:
        for call_id in event.ids:
            handle = self._pending.pop(call_id, None)
            if handle is not None:
                handle.cancel()
                self._remember(call_id)
                self.tools_cancelled += 1
                log.info("tool call %s cancelled before it ran", call_id)
            elif call_id in self._done:
                log.info("tool call %s cancelled after it ran; nothing to undo", call_id)

    def _remember(self, call_id: str) -> None:
        self._done[call_id] = None
        while len(self._done) > REMEMBER_CALLS:
            self._done.popitem(last=False)

    def _run_tool(self, call: FunctionCall) -> None:
        self._pending.pop(call.id, None)
        self._remember(call.id)
        player = self._player

        def set_volume(level: float) -> None:
            player.volume = level

        def stop() -> None:
            self._post(ev.RingEnd())  # "stop" silences a ringing timer too
            if self.in_conversation():
                self._post(ev.TalkPressed())

        result, scheduling = tools.run(call, tools.Device(set_volume=set_volume, stop=stop,
                                                          timezone=self.timezone,
                                                          clockwork=self.alerts))
        if self.alerts is not None:
            self.alerts.settings_changed()  # the volume, maybe
        self.tools_run += 1
        log.info("tool %s(%s): %s", call.name, call.args, result)
        self._link.send_tool_response(call, result, scheduling)

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
