"""The machine as a table: every (state, event) pair has a decided behaviour."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivox.core import events as ev
from pivox.core.machine import (
    IGNORED,
    TRANSITIONS,
    Machine,
    State,
    Timings,
    initial,
    sends_audio,
    step,
)

T = Timings()
SAMPLE_EVENTS: dict[type, ev.Event] = {
    ev.AudioReady: ev.AudioReady(),
    ev.Ring: ev.Ring("pasta", "The pasta timer is done."),
    ev.RingEnd: ev.RingEnd(),
    ev.Announce: ev.Announce("Dinner is ready"),
    ev.WakeDetected: ev.WakeDetected("okay_nabu"),
    ev.StopSpoken: ev.StopSpoken("stop"),
    ev.TalkPressed: ev.TalkPressed(),
    ev.SpeechStarted: ev.SpeechStarted(),
    ev.SpeechEnded: ev.SpeechEnded(),
    ev.LinkUp: ev.LinkUp(),
    ev.LinkDown: ev.LinkDown("connection refused"),
    ev.AudioOut: ev.AudioOut(b"\x01\x00" * 480),
    ev.Interrupted: ev.Interrupted(),
    ev.GenerationComplete: ev.GenerationComplete(),
    ev.TurnComplete: ev.TurnComplete(),
    ev.ServerBusy: ev.ServerBusy(True),
    ev.PlaybackDrained: ev.PlaybackDrained(),
    ev.MuteSet: ev.MuteSet(True),
    ev.DeviceFailed: ev.DeviceFailed("microphone", "No such device"),
    ev.ReplySaid: ev.ReplySaid(" Shall I go on?"),
    ev.Timeout: ev.Timeout(),
}
WAITING = (State.BOOTING, State.LISTENING, State.THINKING, State.SPEAKING, State.OFFLINE,
           State.ERROR)


def at(state: State, **kw: object) -> Machine:
    return Machine(state, deadline=kw.pop("deadline", 100.0), **kw)  # type: ignore[arg-type]


def run(m: Machine, *events: ev.Event, now: float = 0.0) -> tuple[Machine, list[ev.Action]]:
    actions: list[ev.Action] = []
    for e in events:
        m, a = step(m, e, now, T)
        actions += a
    return m, actions


def test_every_pair_is_decided_exactly_once() -> None:
    assert set(SAMPLE_EVENTS) == set(ev.EVENT_TYPES)
    for pair in itertools.product(State, ev.EVENT_TYPES):
        assert (pair in TRANSITIONS) != (pair in IGNORED), pair


@pytest.mark.parametrize(("state", "etype"), sorted(
    itertools.product(State, ev.EVENT_TYPES), key=lambda p: (p[0].value, p[1].__name__)))
def test_every_pair(state: State, etype: type) -> None:
    """Each pair either acts as its handler says or leaves the machine untouched."""
    m = at(state, link_up=True, heard_speech=True, turn_done=True, error_kind="link")
    nxt, actions = step(m, SAMPLE_EVENTS[etype], 1000.0, T)
    if (state, etype) in IGNORED:
        assert (nxt, actions) == (m, [])
    else:
        assert isinstance(nxt, Machine)
        if nxt.state in (State.LISTENING, State.THINKING, State.SPEAKING, State.OFFLINE,
                         State.ERROR):
            assert nxt.deadline is not None, f"{state}+{etype.__name__} waits forever"


def test_timeout_before_deadline_does_nothing() -> None:
    m = at(State.LISTENING, deadline=50.0)
    assert step(m, ev.Timeout(), 49.9, T) == (m, [])


def test_boot_then_wake_opens_link_and_streams_preroll() -> None:
    m, actions = run(initial(0.0, T), ev.AudioReady())
    assert m.state is State.IDLE and ev.OpenLink() in actions
    m, actions = run(m, ev.LinkUp(), ev.WakeDetected("okay_nabu"))
    assert m.state is State.LISTENING
    assert actions == [ev.PlayPrompt("wake"), ev.StartUplink()]


def test_full_turn_returns_to_idle_after_the_speaker_drains() -> None:
    m = at(State.IDLE, link_up=True)
    m, _ = run(m, ev.WakeDetected("okay_nabu"), ev.SpeechStarted(), ev.SpeechEnded())
    assert m.state is State.THINKING
    m, actions = run(m, ev.AudioOut(b"ab"))
    assert m.state is State.SPEAKING and actions == [ev.Play(b"ab"), ev.SetReplying(True)]
    m, actions = run(m, ev.GenerationComplete(), ev.TurnComplete())
    assert m.state is State.SPEAKING and actions == [ev.FinishPlayback()]
    m, actions = run(m, ev.PlaybackDrained())
    assert m.state is State.IDLE and ev.StopUplink() in actions


def test_listening_with_no_speech_returns_to_idle() -> None:
    m, _ = run(at(State.IDLE, link_up=True), ev.WakeDetected("okay_nabu"), now=10.0)
    assert m.deadline == 10.0 + T.no_speech_s
    m, actions = step(m, ev.Timeout(), 10.0 + T.no_speech_s, T)
    assert m.state is State.IDLE and ev.StopUplink() in actions


def test_thinking_without_reply_apologises() -> None:
    m, _ = run(at(State.IDLE, link_up=True), ev.WakeDetected("k"), ev.SpeechStarted(),
               ev.SpeechEnded(), now=5.0)
    m, actions = step(m, ev.Timeout(), 5.0 + T.thinking_s, T)
    assert m.state is State.IDLE and ev.PlayPrompt("apology") in actions


def test_offline_fallback_wakes_speaks_prompt_and_recovers() -> None:
    m = at(State.IDLE)
    m, actions = run(m, ev.WakeDetected("k"), ev.LinkDown("connection refused"))
    assert m.state is State.OFFLINE and ev.PlayPrompt("offline") in actions
    assert m.reason == "connection refused"
    m, actions = run(m, ev.WakeDetected("k"))
    assert m.state is State.OFFLINE
    assert actions == [ev.PlayPrompt("offline"), ev.OpenLink()]
    m, actions = step(m, ev.Timeout(), m.deadline or 0, T)
    assert m.state is State.OFFLINE and actions == [ev.OpenLink()]
    m, _ = run(m, ev.LinkUp())
    assert m.state is State.IDLE and m.link_up


def test_configuration_errors_go_to_error_and_retry_slowly() -> None:
    m, actions = run(at(State.LISTENING), ev.LinkDown("1007 bad setup", config_error=True),
                     now=1.0)
    assert m.state is State.ERROR and m.deadline == 1.0 + T.error_retry_s
    assert ev.PlayPrompt("error") in actions
    m, actions = step(m, ev.Timeout(), m.deadline or 0, T)
    assert actions == [ev.OpenLink()]


def test_interrupted_flushes_at_once_and_listens() -> None:
    m, actions = run(at(State.SPEAKING), ev.Interrupted())
    assert m.state is State.LISTENING and actions == [ev.FlushPlayback(), ev.SetReplying(False)]


def test_wake_word_barges_in_and_drops_the_rest_of_the_old_turn() -> None:
    m, actions = run(at(State.SPEAKING), ev.WakeDetected("k"))
    assert m.state is State.LISTENING and actions[0] == ev.FlushPlayback()
    m, actions = run(m, ev.AudioOut(b"stale"))
    assert m.state is State.LISTENING and actions == []
    m, _ = run(m, ev.TurnComplete(), ev.AudioOut(b"new"))
    assert m.state is State.SPEAKING  # audio is welcome again: no permanent silence


def test_mute_stops_everything_and_unmute_returns_to_idle() -> None:
    m, actions = run(at(State.SPEAKING), ev.MuteSet(True))
    assert m.state is State.MUTED
    assert actions[:3] == [ev.FlushPlayback(), ev.StopUplink(), ev.SetMute(True)]
    m, actions = run(m, ev.MuteSet(False))
    assert m.state is State.IDLE and ev.SetMute(False) in actions


def test_device_failure_and_recovery() -> None:
    m, actions = run(at(State.IDLE), ev.DeviceFailed("microphone", "No such device"))
    assert m.state is State.ERROR and m.error_kind == "device"
    assert ev.ReportProblem("device", "microphone: No such device") in actions
    m, _ = run(m, ev.AudioReady())
    assert m.state is State.IDLE


def test_half_duplex_gates_uplink_only_while_speaking() -> None:
    streaming = replace(at(State.SPEAKING), uplink=True)
    assert not sends_audio(streaming, full_duplex=False)
    assert sends_audio(streaming, full_duplex=True)
    assert sends_audio(replace(streaming, state=State.LISTENING), full_duplex=False)
    assert not sends_audio(at(State.LISTENING), full_duplex=True)  # no StartUplink yet


def test_uplink_follows_the_machine_through_a_conversation() -> None:
    m = step(initial(0.0, T), ev.AudioReady(), 0.0, T)[0]
    m = step(m, ev.WakeDetected("okay_nabu"), 1.0, T)[0]
    assert m.uplink
    m = step(m, ev.LinkUp(), 1.1, T)[0]
    m = step(m, ev.SpeechStarted(), 1.2, T)[0]
    m = step(m, ev.SpeechEnded(), 2.0, T)[0]
    assert m.uplink and m.state is State.THINKING
    m = step(m, ev.TalkPressed(), 2.5, T)[0]  # cancelled
    assert not m.uplink


def test_replying_and_expected_reply_are_the_machine_s_decisions() -> None:
    """The stop word's arming, the echo hold and the link's reply deadline follow the state:
    entering SPEAKING says SetReplying(True), leaving it SetReplying(False), entering
    THINKING says ExpectReply, whichever transition got there."""
    m = step(initial(0.0, T), ev.AudioReady(), 0.0, T)[0]
    m, acts = step(m, ev.WakeDetected("okay_nabu"), 1.0, T)
    assert ev.SetReplying(True) not in acts and ev.ExpectReply() not in acts
    m = step(m, ev.SpeechStarted(), 1.2, T)[0]
    m, acts = step(m, ev.SpeechEnded(), 2.0, T)
    assert acts == [ev.UserActivity(False), ev.ExpectReply()]
    m, acts = step(m, ev.AudioOut(b"ab"), 2.5, T)
    assert acts == [ev.Play(b"ab"), ev.SetReplying(True)]
    m, acts = step(m, ev.Interrupted(), 2.7, T)
    assert m.state is State.LISTENING and acts == [ev.FlushPlayback(), ev.SetReplying(False)]
    m, acts = step(m, ev.AudioOut(b"cd"), 2.8, T)
    m, acts = step(m, ev.StopSpoken("stop"), 2.9, T)
    assert m.state is State.IDLE and ev.SetReplying(False) in acts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(SAMPLE_EVENTS.values())), max_size=60))
def test_replying_is_on_exactly_while_speaking(events: list[ev.Event]) -> None:
    m, now, replying = initial(0.0, T), 0.0, False
    for e in events:
        now += 1.0
        m, acts = step(m, e, now, T)
        for a in acts:
            if isinstance(a, ev.SetReplying):
                assert a.on is not replying, "SetReplying repeated"
                replying = a.on
        assert replying is (m.state is State.SPEAKING)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(SAMPLE_EVENTS.values())), max_size=60),
       st.lists(st.floats(0, 40), min_size=60, max_size=60))
def test_never_stuck(events: list[ev.Event], gaps: list[float]) -> None:
    """Whatever happens, a waiting state always has a deadline, so a Timeout frees it."""
    m, now = initial(0.0, T), 0.0
    for e, gap in zip(events, gaps, strict=False):
        now += gap
        m, _ = step(m, e, now, T)
        if m.state in WAITING:
            assert m.deadline is not None
        if m.state is State.IDLE and m.link_up:
            assert m.deadline is not None  # a warm session is closed eventually


def test_a_busy_server_keeps_the_conversation_open_between_replies() -> None:
    """A reasoning model may speak twice for one request: stay until it says IDLE."""
    m = at(State.SPEAKING)
    m, _ = run(m, ev.ServerBusy(True), ev.TurnComplete(), ev.PlaybackDrained(), now=3.0)
    assert m.state is State.THINKING and m.deadline == 3.0 + T.thinking_s
    m, actions = run(m, ev.AudioOut(b"second answer"))
    assert m.state is State.SPEAKING and actions == [ev.Play(b"second answer"),
                                                   ev.SetReplying(True)]
    m, _ = run(m, ev.TurnComplete(), ev.PlaybackDrained())
    assert m.state is State.THINKING
    m, actions = run(m, ev.ServerBusy(False))
    assert m.state is State.IDLE and ev.StopUplink() in actions


def test_after_a_wake_word_barge_in_the_question_is_end_pointed() -> None:
    m = at(State.SPEAKING, link_up=True)
    m, _ = run(m, ev.SpeechStarted(), ev.WakeDetected("k"), ev.SpeechEnded(), now=2.0)
    assert m.state is State.THINKING, "the question after a barge-in was never end-pointed"


def test_a_device_error_keeps_the_session_it_had() -> None:
    m, _ = run(at(State.IDLE, link_up=True), ev.DeviceFailed("microphone", "gone"), now=1.0)
    assert m.link_up
    m, _ = run(m, ev.AudioReady(), now=2.0)
    assert m.state is State.IDLE and m.link_up and m.deadline == 2.0 + T.keep_warm_s


def test_a_stop_word_ends_a_reply_being_spoken_and_nothing_else() -> None:
    m, actions = run(at(State.SPEAKING), ev.StopSpoken("stop"))
    assert m.state is State.IDLE
    assert ev.FlushPlayback() in actions and ev.StopUplink() in actions
    for state in (State.IDLE, State.LISTENING, State.THINKING, State.OFFLINE):
        assert run(at(state), ev.StopSpoken("stop"))[0].state is state
