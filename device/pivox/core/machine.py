"""What the speaker is doing now, and what it does next: one table, one `step` function.

Pure: no I/O, no clock reads, no asyncio. The loop passes `now` (monotonic seconds) and
sends `Timeout` whenever `now >= machine.deadline`. Every state that waits for something
carries a deadline, so nothing waits forever; IDLE and MUTED are resting states and only
carry a deadline while a warm session is open (to close it).

The table maps (state, event type) to a small handler. Pairs not in the table are listed
in IGNORED on purpose; tests check that the two together cover every pair.
"""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from pivox.core import events as ev
from pivox.core import handlers as h
from pivox.core.events import Action, Event
from pivox.core.state import (
    CONVERSATION,
    E,
    Handler,
    Key,
    Machine,
    Result,
    State,
    Timings,
    initial,
)

__all__ = ["CONVERSATION", "IGNORED", "TRANSITIONS", "Machine", "Result", "State", "Timings",
           "initial", "sends_audio", "step"]

# ------------------------------------------------------------------ the table


def _on(state: State, etype: type[E], handler: Handler[E]) -> tuple[Key, Handler[Event]]:
    """One table entry; the type checker sees that the handler takes the event type it is
    filed under. `step` looks handlers up by the event's own type, so the cast holds."""
    return (state, etype), cast("Handler[Event]", handler)


S = State
TRANSITIONS: dict[Key, Handler[Event]] = dict([
    _on(S.BOOTING, ev.AudioReady, h.boot_ready),
    _on(S.BOOTING, ev.Timeout, h.boot_timeout),
    _on(S.BOOTING, ev.DeviceFailed, h.device_failed),
    _on(S.BOOTING, ev.MuteSet, h.mute),
    _on(S.IDLE, ev.WakeDetected, h.wake),
    _on(S.IDLE, ev.TalkPressed, h.wake),
    _on(S.IDLE, ev.LinkUp, h.link_up),
    _on(S.IDLE, ev.LinkDown, h.link_down_quiet),
    _on(S.IDLE, ev.Timeout, h.idle_timeout),
    _on(S.IDLE, ev.MuteSet, h.mute),
    _on(S.IDLE, ev.DeviceFailed, h.device_failed),
    _on(S.LISTENING, ev.SpeechStarted, h.speech_started),
    _on(S.LISTENING, ev.SpeechEnded, h.speech_ended),
    _on(S.LISTENING, ev.AudioOut, h.first_audio),
    _on(S.LISTENING, ev.Interrupted, h.end_discard),
    _on(S.LISTENING, ev.TurnComplete, h.end_discard),
    _on(S.LISTENING, ev.LinkUp, h.link_up),
    _on(S.LISTENING, ev.LinkDown, h.link_down_in_conversation),
    _on(S.LISTENING, ev.TalkPressed, h.cancel),
    _on(S.LISTENING, ev.Timeout, h.listening_timeout),
    _on(S.LISTENING, ev.MuteSet, h.mute),
    _on(S.LISTENING, ev.DeviceFailed, h.device_failed),
    _on(S.THINKING, ev.AudioOut, h.first_audio),
    _on(S.THINKING, ev.SpeechStarted, h.speech_started),
    _on(S.THINKING, ev.Interrupted, h.end_discard),
    _on(S.THINKING, ev.TurnComplete, h.thinking_turn_complete),
    _on(S.THINKING, ev.LinkUp, h.link_up),
    _on(S.THINKING, ev.LinkDown, h.link_down_in_conversation),
    _on(S.THINKING, ev.WakeDetected, h.restart_listening),
    _on(S.THINKING, ev.TalkPressed, h.cancel),
    _on(S.THINKING, ev.Timeout, h.thinking_timeout),
    _on(S.THINKING, ev.MuteSet, h.mute),
    _on(S.THINKING, ev.DeviceFailed, h.device_failed),
    _on(S.THINKING, ev.ReplySaid, h.reply_said),
    _on(S.SPEAKING, ev.ReplySaid, h.reply_said),
    _on(S.SPEAKING, ev.AudioOut, h.more_audio),
    _on(S.SPEAKING, ev.TurnComplete, h.turn_complete),
    _on(S.LISTENING, ev.ServerBusy, h.server_busy),
    _on(S.THINKING, ev.ServerBusy, h.server_busy),
    _on(S.SPEAKING, ev.ServerBusy, h.server_busy),
    _on(S.SPEAKING, ev.PlaybackDrained, h.drained),
    _on(S.SPEAKING, ev.Interrupted, h.interrupted),
    _on(S.SPEAKING, ev.WakeDetected, h.barge_in),
    _on(S.SPEAKING, ev.TalkPressed, h.cancel),
    _on(S.SPEAKING, ev.StopSpoken, h.cancel),
    _on(S.SPEAKING, ev.LinkUp, h.link_up),
    _on(S.SPEAKING, ev.LinkDown, h.link_down_in_conversation),
    _on(S.SPEAKING, ev.Timeout, h.speaking_timeout),
    _on(S.SPEAKING, ev.SpeechStarted, h.note_speech),
    _on(S.SPEAKING, ev.SpeechEnded, h.note_speech),
    _on(S.SPEAKING, ev.MuteSet, h.mute),
    _on(S.SPEAKING, ev.DeviceFailed, h.device_failed),
    _on(S.OFFLINE, ev.WakeDetected, h.offline_wake),
    _on(S.OFFLINE, ev.TalkPressed, h.offline_wake),
    _on(S.OFFLINE, ev.LinkUp, h.link_up_recovered),
    _on(S.OFFLINE, ev.LinkDown, h.offline_link_down),
    _on(S.OFFLINE, ev.Timeout, h.offline_timeout),
    _on(S.OFFLINE, ev.MuteSet, h.mute),
    _on(S.OFFLINE, ev.DeviceFailed, h.device_failed),
    _on(S.MUTED, ev.MuteSet, h.unmute),
    _on(S.MUTED, ev.TalkPressed, h.remind_muted),
    _on(S.MUTED, ev.LinkUp, h.link_up),
    _on(S.MUTED, ev.LinkDown, h.link_flag_down),
    _on(S.MUTED, ev.DeviceFailed, h.device_failed_muted),
    _on(S.ERROR, ev.AudioReady, h.error_audio_ready),
    _on(S.ERROR, ev.LinkUp, h.error_link_up),
    _on(S.ERROR, ev.Timeout, h.error_timeout),
    _on(S.ERROR, ev.WakeDetected, h.error_wake),
    _on(S.ERROR, ev.TalkPressed, h.error_wake),
    _on(S.ERROR, ev.DeviceFailed, h.error_device),
    _on(S.ERROR, ev.MuteSet, h.mute),
    # Timers, alarms and announcements, in every state: ringing is a flag beside the state.
    *(_on(s, ev.Ring, h.ring) for s in State),
    *(_on(s, ev.RingEnd, h.ring_end) for s in State),
    *(_on(s, ev.Announce, h.announce) for s in State),
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
_ignore(tuple(State), (ev.ReplySaid,), "only the reply being given decides the follow-up")
_ignore((S.BOOTING,), (ev.LinkUp, ev.LinkDown, ev.WakeDetected, ev.TalkPressed),
        "nothing can happen before audio runs")
_ignore((S.LISTENING,), (ev.WakeDetected,), "already listening")
_ignore(tuple(State), (ev.StopSpoken,), "a stop word only ends a reply being spoken (late "
        "detections from the capture thread land here)")
_ignore((S.MUTED,), (ev.WakeDetected,), "the microphone is gated; a detection cannot be real")
_ignore((S.MUTED,), (ev.Timeout,), "muted is a resting state with no deadline")
_ignore((S.ERROR,), (ev.LinkDown,), "already in error; the retry timer runs")


STOPS_RINGING = (ev.WakeDetected, ev.TalkPressed, ev.StopSpoken)


def step(m: Machine, event: Event, now: float, timings: Timings) -> tuple[Machine, list[Action]]:
    """Apply one event. Returns the new machine and the actions to carry out, in order."""
    if isinstance(event, ev.Timeout) and (m.deadline is None or now < m.deadline):
        return m, []
    # Before the table: while a timer rings, the wake word, the talk button and the stop
    # word mean "stop ringing" in whatever state, and nothing else (no conversation starts
    # or ends); the table says what they do otherwise.
    if m.ringing and isinstance(event, STOPS_RINGING):
        return replace(m, ringing=False), [ev.StopRinging()]
    handler = TRANSITIONS.get((m.state, type(event)))
    if handler is None:
        return m, []
    nxt, actions = handler(m, event, now, timings)
    return _follow(m, nxt, actions)


def _follow(before: Machine, after: Machine, actions: list[Action]
            ) -> tuple[Machine, list[Action]]:
    """What every transition implies, decided once here rather than in each handler: the
    uplink flag follows Start/StopUplink and the ringing flag Start/StopRinging (so
    handlers that build a fresh Machine keep them); the user's turn (activity) follows UserActivity,
    a repeated edge is dropped, and stopping the uplink closes an open turn first;
    entering or leaving SPEAKING arms or disarms the stop word and the echo hold
    (SetReplying); entering THINKING means a reply is due."""
    uplink, activity, ringing = before.uplink, before.activity, before.ringing
    kept: list[Action] = []
    for a in actions:
        if isinstance(a, ev.UserActivity):
            if a.on is activity or (a.on and not uplink):
                continue
            activity = a.on
        elif isinstance(a, ev.StartUplink):
            uplink = True
        elif isinstance(a, ev.StartRinging | ev.StopRinging):
            ringing = isinstance(a, ev.StartRinging)
        elif isinstance(a, ev.StopUplink):
            if activity:
                kept.append(ev.UserActivity(False))
                activity = False
            uplink = False
        kept.append(a)
    actions = kept
    if (uplink, activity, ringing) != (after.uplink, after.activity, after.ringing):
        after = replace(after, uplink=uplink, activity=activity, ringing=ringing)
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
