"""The machine's handlers: each one is a (state, event) pair's decision, pure.

`core/machine.py` files them in its table; each takes the machine, the event, `now` and the
timings, and returns the next machine and the actions to carry out, in order.
"""

from __future__ import annotations

from dataclasses import replace

from pivox.core import events as ev
from pivox.core.events import Action, Event
from pivox.core.state import CONVERSATION, Machine, Result, State, Timings

# ------------------------------------------------------------------ helpers


def _idle(m: Machine, now: float, t: Timings, actions: list[Action]) -> Result:
    deadline = now + t.keep_warm_s if m.link_up else None
    return Machine(State.IDLE, deadline, link_up=m.link_up), actions


def _listen(m: Machine, now: float, t: Timings, actions: list[Action], *,
            discard_reply: bool, follow_up: bool = False) -> Result:
    return (
        replace(m, state=State.LISTENING, heard_speech=False, turn_done=False,
                deadline=now + (t.follow_up_s if follow_up else t.no_speech_s),
                discard_reply=discard_reply, follow_up=follow_up, reply_tail="", asked=False),
        actions,
    )


def _think(m: Machine, now: float, t: Timings, actions: list[Action]) -> Result:
    """The user's turn is over: close it (local turn detection sends activityEnd) and
    wait for the reply, whose transcription starts afresh."""
    return (replace(m, state=State.THINKING, deadline=now + t.thinking_s, reply_tail="",
                    asked=False), [*actions, ev.UserActivity(False)])


def asks(text: str) -> bool:
    """Whether a reply's transcription ends by asking the user something."""
    return text.rstrip(" \t\n\"'\u201d\u2019)").endswith(("?", "\uff1f"))


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
                   deadline=now + t.max_utterance_s), [ev.UserActivity(True)]


def speech_ended(m: Machine, e: Event, now: float, t: Timings) -> Result:
    if not m.heard_speech:
        return _stay(m)
    return _think(m, now, t, [])


def reply_said(m: Machine, e: ev.ReplySaid, now: float, t: Timings) -> Result:
    tail = (m.reply_tail + e.text)[-80:]
    return replace(m, reply_tail=tail, asked=asks(tail)), []


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
        return _think(m, now, t, [])
    # Nobody spoke: say so with a short earcon, unless this was the quiet end of a
    # follow-up the user did not take up.
    prompt: list[Action] = [] if m.follow_up else [ev.PlayPrompt("no_speech")]
    return _idle(m, now, t, [ev.StopUplink(), *prompt])


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
    if t.follow_up == "always" or (t.follow_up == "question" and m.asked):
        return _listen(m, now, t, [], discard_reply=False, follow_up=True)  # no wake word
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
    """While speaking, the user's voice only matters if they go on to barge in (with local
    turn detection the runner opens the turn only if the model hears the microphone)."""
    talking = isinstance(e, ev.SpeechStarted)
    return replace(m, heard_speech=talking), [ev.UserActivity(talking)]


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




# ------------------------------------------------------------------ timers and announcements


def ring(m: Machine, e: ev.Ring, now: float, t: Timings) -> Result:
    """A timer or alarm rings in any state; from idle with a session open, the model is
    also asked to say which (a text turn, so the reply plays as any reply does)."""
    actions: list[Action] = [ev.StartRinging(e.label)]
    if m.state is State.IDLE and m.link_up and e.text:
        return _text_turn(m, now, t, [*actions, ev.SendText(e.text)])
    return m, actions


def ring_end(m: Machine, e: Event, now: float, t: Timings) -> Result:
    return _stay(m, ev.StopRinging()) if m.ringing else _stay(m)


def announce(m: Machine, e: ev.Announce, now: float, t: Timings) -> Result:
    """From idle with a session open the model says it; anywhere else a local voice."""
    if m.state is State.IDLE and m.link_up:
        return _text_turn(m, now, t, [ev.SendText(say_exactly(e.text))])
    return _stay(m, ev.SayLocally(e.text))


def say_exactly(text: str) -> str:
    """The text turn that has the model read an announcement out, word for word."""
    return ("Announce this to the room, saying exactly these words and nothing else: "
            f"\"{text}\"")


def _text_turn(m: Machine, now: float, t: Timings, actions: list[Action]) -> Result:
    """A turn sent as text: the reply is due as after speech; the microphone stays local."""
    return (replace(m, state=State.THINKING, deadline=now + t.thinking_s, heard_speech=False,
                    turn_done=False, discard_reply=False, reply_tail="", asked=False), actions)
