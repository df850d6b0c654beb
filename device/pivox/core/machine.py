"""What the speaker is doing now, and what it does next: one table, one `step` function.

Pure: no I/O, no clock reads, no asyncio. The loop passes `now` (monotonic seconds) and
sends `Timeout` whenever `now >= machine.deadline`. Every state that waits for something
carries a deadline, so nothing waits forever; IDLE and MUTED are resting states and only
carry a deadline while a warm session is open (to close it).

The table maps (state, event type) to a small handler. Pairs not in the table are listed
in IGNORED on purpose; tests check that the two together cover every pair.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar, cast

from pivox.core import events as ev
from pivox.core.events import Action, Event


class State(enum.Enum):
    BOOTING = "booting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    OFFLINE = "offline"
    MUTED = "muted"
    ERROR = "error"


@dataclass(frozen=True)
class Timings:
    """Deadlines in seconds. Defaults suit a kitchen speaker."""

    boot_s: float = 20.0  # audio must start within this, or ERROR
    no_speech_s: float = 8.0  # listening and nobody speaks: back to idle
    max_utterance_s: float = 30.0  # listening this long: stop waiting, expect the reply
    thinking_s: float = 10.0  # no reply this long after speech ends: apologise, idle
    reply_gap_s: float = 10.0  # speaking, no audio and no turnComplete this long: finish
    drain_s: float = 30.0  # speaking, turn over, speaker never drains: give up
    follow_up_s: float = 0.0  # after a reply, keep listening this long (0: back to idle)
    keep_warm_s: float = 60.0  # idle with an open session: close it after this
    offline_recheck_s: float = 30.0  # offline: nudge the link this often
    error_retry_s: float = 60.0  # error on a configuration failure: retry this slowly


@dataclass(frozen=True)
class Machine:
    state: State = State.BOOTING
    deadline: float | None = None
    link_up: bool = False
    heard_speech: bool = False  # LISTENING: the user has spoken in this turn
    discard_reply: bool = False  # after a local barge-in: drop the old turn's audio
    turn_done: bool = False  # SPEAKING: turnComplete seen, waiting for the speaker to drain;
    #                          THINKING: a reply was played and the server is still busy
    busy: bool = False  # the server reported interactionStatus IN_PROGRESS
    reason: str = ""  # OFFLINE/ERROR: why, for status and the journal
    error_kind: str = ""  # ERROR: "device" or "link"
    device: str = ""  # ERROR of kind "device": which one ("microphone", "speaker")
    uplink: bool = False  # microphone audio streams to the link (StartUplink..StopUplink)


Result = tuple[Machine, list[Action]]
E = TypeVar("E", bound=Event)
# A handler takes the event type it is filed under in TRANSITIONS (see `_on`).
Handler = Callable[[Machine, E, float, Timings], Result]
Key = tuple[State, type]

CONVERSATION = (State.LISTENING, State.THINKING, State.SPEAKING)


def initial(now: float, timings: Timings) -> Machine:
    return Machine(State.BOOTING, deadline=now + timings.boot_s)


# ------------------------------------------------------------------ helpers


def _idle(m: Machine, now: float, t: Timings, actions: list[Action]) -> Result:
    deadline = now + t.keep_warm_s if m.link_up else None
    return Machine(State.IDLE, deadline, link_up=m.link_up), actions


def _listen(m: Machine, now: float, t: Timings, actions: list[Action], *,
            discard_reply: bool) -> Result:
    return (
        replace(m, state=State.LISTENING, deadline=now + t.no_speech_s, heard_speech=False,
                turn_done=False, discard_reply=discard_reply),
        actions,
    )


def _offline(m: Machine, now: float, t: Timings, reason: str, actions: list[Action]) -> Result:
    nxt = Machine(State.OFFLINE, now + t.offline_recheck_s, link_up=False, reason=reason)
    return nxt, [*actions, ev.ReportProblem("offline", reason)]


def _error(m: Machine, now: float, t: Timings, kind: str, reason: str, actions: list[Action],
           device: str = "") -> Result:
    # A device error leaves the session as it was; a link error means there is none.
    nxt = Machine(State.ERROR, now + t.error_retry_s, link_up=m.link_up and kind == "device",
                  reason=reason, error_kind=kind, device=device)
    return nxt, [*actions, ev.ReportProblem(kind, reason)]


def _stay(m: Machine, *actions: Action) -> Result:
    return m, list(actions)


# ------------------------------------------------------------------ handlers


def boot_ready(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _idle(replace(m, link_up=False), now, t, [ev.OpenLink()])


def boot_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _error(m, now, t, "device", "audio did not start", [])


def wake(m: Machine, e: Event, now: float, t: Timings) -> Result:
    actions: list[Action] = [ev.PlayPrompt("wake")]
    if not m.link_up:
        actions.append(ev.OpenLink())
    actions.append(ev.StartUplink())
    return _listen(m, now, t, actions, discard_reply=False)


def link_up(m: Machine, e: Event, now: float, t: Timings) -> Result:
    nxt = replace(m, link_up=True)
    if m.state is State.IDLE:
        nxt = replace(nxt, deadline=now + t.keep_warm_s)
    return nxt, []


def link_up_recovered(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _idle(replace(m, link_up=True), now, t, [])


def link_down_quiet(m: Machine, e: ev.LinkDown, now: float, t: Timings) -> Result:
    """Lost the link while nothing depends on it: show it, keep retrying."""
    if e.config_error:
        return _error(m, now, t, "link", e.reason, [])
    return _offline(m, now, t, e.reason, [])


def link_down_in_conversation(m: Machine, e: ev.LinkDown, now: float, t: Timings) -> Result:
    actions: list[Action] = [ev.StopUplink(), ev.FlushPlayback()]
    if e.config_error:
        return _error(m, now, t, "link", e.reason, [*actions, ev.PlayPrompt("error")])
    return _offline(m, now, t, e.reason, [*actions, ev.PlayPrompt("offline")])


def link_flag_down(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return replace(m, link_up=False), []


def idle_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return Machine(State.IDLE, None, link_up=False), [ev.CloseLink()]


def mute(m: Machine, e: ev.MuteSet, now: float, t: Timings) -> Result:
    if not e.on:
        return _stay(m)
    actions: list[Action] = [ev.SetMute(True), ev.PlayPrompt("mute")]
    if m.state in CONVERSATION:
        actions[:0] = [ev.FlushPlayback(), ev.StopUplink()]
    return Machine(State.MUTED, None, link_up=m.link_up), actions


def unmute(m: Machine, e: ev.MuteSet, now: float, t: Timings) -> Result:
    if e.on:
        return _stay(m)
    return _idle(m, now, t, [ev.SetMute(False), ev.PlayPrompt("unmute")])


def device_failed(m: Machine, e: ev.DeviceFailed, now: float, t: Timings) -> Result:
    actions: list[Action] = []
    if m.state in CONVERSATION:
        actions = [ev.StopUplink(), ev.FlushPlayback()]
    return _error(m, now, t, "device", f"{e.device}: {e.reason}", actions, device=e.device)


def device_failed_muted(m: Machine, e: ev.DeviceFailed, now: float, t: Timings) -> Result:
    return _stay(m, ev.ReportProblem("device", f"{e.device}: {e.reason}"))


def speech_started(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return replace(m, state=State.LISTENING, heard_speech=True, turn_done=False,
                   deadline=now + t.max_utterance_s), []


def speech_ended(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if not m.heard_speech:
        return _stay(m)
    return replace(m, state=State.THINKING, deadline=now + t.thinking_s), []


def first_audio(m: Machine, e: ev.AudioOut, now: float, t: Timings) -> Result:
    if m.discard_reply:
        return _stay(m)
    return (replace(m, state=State.SPEAKING, deadline=now + t.reply_gap_s, turn_done=False),
            [ev.Play(e.pcm)])


def more_audio(m: Machine, e: ev.AudioOut, now: float, t: Timings) -> Result:
    return replace(m, deadline=now + t.reply_gap_s, turn_done=False), [ev.Play(e.pcm)]


def end_discard(m: Machine, e: Event, now: float, t: Timings) -> Result:
    """The server closed the turn we barged into: its audio is welcome again."""
    return replace(m, discard_reply=False), []


def thinking_turn_complete(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if m.discard_reply:
        return end_discard(m, e, now, t)
    # The model ended its turn without speaking (nothing to say, or a silent tool call).
    return _idle(m, now, t, [ev.StopUplink()])


def listening_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if m.heard_speech:  # talked for max_utterance_s: stop waiting for the end, await reply
        return replace(m, state=State.THINKING, deadline=now + t.thinking_s), []
    return _idle(m, now, t, [ev.StopUplink()])


def thinking_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _idle(m, now, t, [ev.StopUplink(), ev.PlayPrompt("apology")])


def cancel(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _idle(m, now, t, [ev.StopUplink(), ev.FlushPlayback()])


def restart_listening(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _listen(m, now, t, [ev.PlayPrompt("wake")], discard_reply=m.discard_reply)


def turn_complete(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return replace(m, turn_done=True, deadline=now + t.drain_s), [ev.FinishPlayback()]


def drained(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if not m.turn_done:  # ran dry mid-reply (slow network): keep waiting for audio
        return _stay(m)
    if m.busy:  # the server is still working on this request: more replies will come
        return replace(m, state=State.THINKING, deadline=now + t.thinking_s), []
    if t.follow_up_s > 0:
        nxt, actions = _listen(m, now, t, [], discard_reply=False)
        return replace(nxt, deadline=now + t.follow_up_s), actions
    return _idle(m, now, t, [ev.StopUplink()])


def server_busy(m: Machine, e: ev.ServerBusy, now: float, t: Timings) -> Result:
    nxt = replace(m, busy=e.busy)
    if not e.busy and m.state is State.THINKING and m.turn_done:
        return _idle(nxt, now, t, [ev.StopUplink()])
    return nxt, []


def interrupted(m: Machine, e: Event, now: float, t: Timings) -> Result:
    nxt = replace(m, state=State.LISTENING, heard_speech=True, discard_reply=False,
                  turn_done=False, deadline=now + t.max_utterance_s)
    return nxt, [ev.FlushPlayback()]


def barge_in(m: Machine, e: Event, now: float, t: Timings) -> Result:
    """The wake word during a reply: stop at once; drop the rest of the old turn. The user
    is already talking (the detector heard it start while the reply played)."""
    nxt, actions = _listen(m, now, t, [ev.FlushPlayback(), ev.PlayPrompt("wake")],
                           discard_reply=True)
    return replace(nxt, heard_speech=m.heard_speech), actions


def note_speech(m: Machine, e: ev.SpeechStarted | ev.SpeechEnded, now: float, t: Timings) -> Result:
    """While speaking, the user's voice only matters if they go on to barge in."""
    return replace(m, heard_speech=isinstance(e, ev.SpeechStarted)), []


def speaking_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if m.turn_done:
        return _idle(m, now, t, [ev.FlushPlayback(), ev.StopUplink()])
    return replace(m, turn_done=True, deadline=now + t.drain_s), [ev.FinishPlayback()]


def offline_wake(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _stay(m, ev.PlayPrompt("offline"), ev.OpenLink())


def offline_link_down(m: Machine, e: ev.LinkDown, now: float, t: Timings) -> Result:
    if e.config_error:
        return _error(m, now, t, "link", e.reason, [])
    return replace(m, reason=e.reason), []


def offline_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return replace(m, deadline=now + t.offline_recheck_s), [ev.OpenLink()]


def error_audio_ready(m: Machine, e: ev.AudioReady, now: float, t: Timings) -> Result:
    if m.error_kind != "device" or e.device != m.device:  # another device is still missing
        return _stay(m)
    return _idle(Machine(State.IDLE, link_up=m.link_up), now, t, [ev.OpenLink()])


def error_link_up(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if m.error_kind != "link":
        return replace(m, link_up=True), []
    return _idle(replace(m, link_up=True), now, t, [])


def error_timeout(m: Machine, e: Event, now: float, t: Timings) -> Result:
    actions: list[Action] = [ev.OpenLink()] if m.error_kind == "link" else []
    return replace(m, deadline=now + t.error_retry_s), actions


def error_wake(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _stay(m, ev.PlayPrompt("error"))


def error_device(m: Machine, e: ev.DeviceFailed, now: float, t: Timings) -> Result:
    return replace(m, reason=f"{e.device}: {e.reason}", error_kind="device", device=e.device), []


def remind_muted(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _stay(m, ev.PlayPrompt("mute"))


# ------------------------------------------------------------------ the table


def _on(state: State, etype: type[E], handler: Handler[E]) -> tuple[Key, Handler[Event]]:
    """One table entry; the type checker sees that the handler takes the event type it is
    filed under. `step` looks handlers up by the event's own type, so the cast holds."""
    return (state, etype), cast("Handler[Event]", handler)


S = State
TRANSITIONS: dict[Key, Handler[Event]] = dict([
    _on(S.BOOTING, ev.AudioReady, boot_ready),
    _on(S.BOOTING, ev.Timeout, boot_timeout),
    _on(S.BOOTING, ev.DeviceFailed, device_failed),
    _on(S.BOOTING, ev.MuteSet, mute),
    _on(S.IDLE, ev.WakeDetected, wake),
    _on(S.IDLE, ev.TalkPressed, wake),
    _on(S.IDLE, ev.LinkUp, link_up),
    _on(S.IDLE, ev.LinkDown, link_down_quiet),
    _on(S.IDLE, ev.Timeout, idle_timeout),
    _on(S.IDLE, ev.MuteSet, mute),
    _on(S.IDLE, ev.DeviceFailed, device_failed),
    _on(S.LISTENING, ev.SpeechStarted, speech_started),
    _on(S.LISTENING, ev.SpeechEnded, speech_ended),
    _on(S.LISTENING, ev.AudioOut, first_audio),
    _on(S.LISTENING, ev.Interrupted, end_discard),
    _on(S.LISTENING, ev.TurnComplete, end_discard),
    _on(S.LISTENING, ev.LinkUp, link_up),
    _on(S.LISTENING, ev.LinkDown, link_down_in_conversation),
    _on(S.LISTENING, ev.TalkPressed, cancel),
    _on(S.LISTENING, ev.Timeout, listening_timeout),
    _on(S.LISTENING, ev.MuteSet, mute),
    _on(S.LISTENING, ev.DeviceFailed, device_failed),
    _on(S.THINKING, ev.AudioOut, first_audio),
    _on(S.THINKING, ev.SpeechStarted, speech_started),
    _on(S.THINKING, ev.Interrupted, end_discard),
    _on(S.THINKING, ev.TurnComplete, thinking_turn_complete),
    _on(S.THINKING, ev.LinkUp, link_up),
    _on(S.THINKING, ev.LinkDown, link_down_in_conversation),
    _on(S.THINKING, ev.WakeDetected, restart_listening),
    _on(S.THINKING, ev.TalkPressed, cancel),
    _on(S.THINKING, ev.Timeout, thinking_timeout),
    _on(S.THINKING, ev.MuteSet, mute),
    _on(S.THINKING, ev.DeviceFailed, device_failed),
    _on(S.SPEAKING, ev.AudioOut, more_audio),
    _on(S.SPEAKING, ev.TurnComplete, turn_complete),
    _on(S.LISTENING, ev.ServerBusy, server_busy),
    _on(S.THINKING, ev.ServerBusy, server_busy),
    _on(S.SPEAKING, ev.ServerBusy, server_busy),
    _on(S.SPEAKING, ev.PlaybackDrained, drained),
    _on(S.SPEAKING, ev.Interrupted, interrupted),
    _on(S.SPEAKING, ev.WakeDetected, barge_in),
    _on(S.SPEAKING, ev.TalkPressed, cancel),
    _on(S.SPEAKING, ev.StopSpoken, cancel),
    _on(S.SPEAKING, ev.LinkUp, link_up),
    _on(S.SPEAKING, ev.LinkDown, link_down_in_conversation),
    _on(S.SPEAKING, ev.Timeout, speaking_timeout),
    _on(S.SPEAKING, ev.SpeechStarted, note_speech),
    _on(S.SPEAKING, ev.SpeechEnded, note_speech),
    _on(S.SPEAKING, ev.MuteSet, mute),
    _on(S.SPEAKING, ev.DeviceFailed, device_failed),
    _on(S.OFFLINE, ev.WakeDetected, offline_wake),
    _on(S.OFFLINE, ev.TalkPressed, offline_wake),
    _on(S.OFFLINE, ev.LinkUp, link_up_recovered),
    _on(S.OFFLINE, ev.LinkDown, offline_link_down),
    _on(S.OFFLINE, ev.Timeout, offline_timeout),
    _on(S.OFFLINE, ev.MuteSet, mute),
    _on(S.OFFLINE, ev.DeviceFailed, device_failed),
    _on(S.MUTED, ev.MuteSet, unmute),
    _on(S.MUTED, ev.TalkPressed, remind_muted),
    _on(S.MUTED, ev.LinkUp, link_up),
    _on(S.MUTED, ev.LinkDown, link_flag_down),
    _on(S.MUTED, ev.DeviceFailed, device_failed_muted),
    _on(S.ERROR, ev.AudioReady, error_audio_ready),
    _on(S.ERROR, ev.LinkUp, error_link_up),
    _on(S.ERROR, ev.Timeout, error_timeout),
    _on(S.ERROR, ev.WakeDetected, error_wake),
    _on(S.ERROR, ev.TalkPressed, error_wake),
    _on(S.ERROR, ev.DeviceFailed, error_device),
    _on(S.ERROR, ev.MuteSet, mute),
])

# Pairs that change nothing, each for a reason a reader can check.
IGNORED: dict[tuple[State, type], str] = {}


def _ignore(states: tuple[State, ...], events: tuple[type, ...], why: str) -> None:
    for s in states:
        for e in events:
            if (s, e) not in TRANSITIONS:
                IGNORED[(s, e)] = why


_ignore((S.IDLE, S.OFFLINE, S.MUTED, S.ERROR, S.BOOTING),
        (ev.AudioOut, ev.Interrupted, ev.GenerationComplete, ev.TurnComplete),
        "late server content for a conversation that is already over")
_ignore(tuple(State), (ev.ServerBusy,), "only matters while a conversation is open")
_ignore(tuple(State), (ev.PlaybackDrained,), "playback only matters at the end of a reply")
_ignore(tuple(State), (ev.GenerationComplete,),
        "audio may still be in flight; turnComplete ends the turn")
_ignore(tuple(State), (ev.SpeechStarted, ev.SpeechEnded),
        "local speech detection only steers a conversation; while speaking it is only noted "
        "(the server decides whether the user interrupts)")
_ignore(tuple(State), (ev.AudioReady,), "audio is already running")
_ignore((S.BOOTING,), (ev.LinkUp, ev.LinkDown, ev.WakeDetected, ev.TalkPressed),
        "nothing can happen before audio runs")
_ignore((S.LISTENING,), (ev.WakeDetected,), "already listening")
_ignore(tuple(State), (ev.StopSpoken,), "a stop word only ends a reply being spoken (late "
        "detections from the capture thread land here)")
_ignore((S.MUTED,), (ev.WakeDetected,), "the microphone is gated; a detection cannot be real")
_ignore((S.MUTED,), (ev.Timeout,), "muted is a resting state with no deadline")
_ignore((S.ERROR,), (ev.LinkDown,), "already in error; the retry timer runs")


def step(m: Machine, event: Event, now: float, timings: Timings) -> tuple[Machine, list[Action]]:
    """Apply one event. Returns the new machine and the actions to carry out, in order."""
    if isinstance(event, ev.Timeout) and (m.deadline is None or now < m.deadline):
        return m, []
    handler = TRANSITIONS.get((m.state, type(event)))
    if handler is None:
        return m, []
    nxt, actions = handler(m, event, now, timings)
    return _follow(m, nxt, actions)


def _follow(before: Machine, after: Machine, actions: list[Action]
            ) -> tuple[Machine, list[Action]]:
    """What every transition implies, decided once here rather than in each handler: the
    uplink flag follows Start/StopUplink; entering or leaving SPEAKING arms or disarms the
    stop word and the echo hold (SetReplying); entering THINKING means a reply is due."""
    uplink = before.uplink
    for a in actions:
        if isinstance(a, ev.StartUplink):
            uplink = True
        elif isinstance(a, ev.StopUplink):
            uplink = False
    if uplink is not after.uplink:
        after = replace(after, uplink=uplink)
    edges: list[Action] = []
    speaking = after.state is State.SPEAKING
    if speaking is not (before.state is State.SPEAKING):
        edges.append(ev.SetReplying(speaking))
    if after.state is State.THINKING and before.state is not State.THINKING:
        edges.append(ev.ExpectReply())
    return after, [*actions, *edges] if edges else actions


def sends_audio(m: Machine, full_duplex: bool) -> bool:
    """Whether a microphone frame goes to the link now.

    Without a converged echo canceller the speaker would hear its own reply and interrupt
    itself, so audio to the link pauses while speaking (the wake word still barges in).
    """
    return m.uplink and not (m.state is State.SPEAKING and not full_duplex)
