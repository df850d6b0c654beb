"""Ringing as a flag beside the state: it starts in any state, the wake word, the talk
button and the stop word silence it (and do nothing else), and handlers that build a
fresh machine keep it. Text turns: a timer that rings, or an announcement, from idle with a
session open, goes to the model; anywhere else an announcement is said locally."""

from __future__ import annotations

import pytest

from pivox.core import events as ev
from pivox.core import handlers as h
from pivox.core.machine import Machine, State, Timings, step

T = Timings()


def at(state: State, **kw: object) -> Machine:
    return Machine(state, deadline=kw.pop("deadline", 100.0), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(State))
def test_ring_starts_in_every_state(state: State) -> None:
    m, actions = step(at(state), ev.Ring("pasta"), 0.0, T)
    assert m.ringing and actions[0] == ev.StartRinging("pasta")
    assert m.state is state  # no text: nothing else changes


@pytest.mark.parametrize("event", [ev.WakeDetected("okay_nabu"), ev.TalkPressed(),
                                   ev.StopSpoken("stop")])
@pytest.mark.parametrize("state", [State.IDLE, State.LISTENING, State.SPEAKING,
                                   State.OFFLINE, State.MUTED])
def test_wake_talk_or_stop_while_ringing_only_stop_the_ringing(state: State,
                                                               event: ev.Event) -> None:
    m = at(state, ringing=True, link_up=True)
    nxt, actions = step(m, event, 1.0, T)
    assert actions == [ev.StopRinging()]
    assert nxt == at(state, ringing=False, link_up=True)
    # and once it is quiet, the same event does what it always did
    again, more = step(nxt, event, 1.0, T)
    assert ev.StopRinging() not in more
    if state is State.IDLE and not isinstance(event, ev.StopSpoken):
        assert again.state is State.LISTENING


def test_ring_end_stops_only_when_ringing() -> None:
    m, actions = step(at(State.IDLE, ringing=True), ev.RingEnd(), 0.0, T)
    assert (m.ringing, actions) == (False, [ev.StopRinging()])
    assert step(at(State.IDLE), ev.RingEnd(), 0.0, T) == (at(State.IDLE), [])


def test_handlers_that_build_a_fresh_machine_keep_the_ringing() -> None:
    """LinkDown in a conversation builds a new OFFLINE machine; the ring goes on."""
    m = at(State.SPEAKING, ringing=True, link_up=True)
    m, _ = step(m, ev.LinkDown("connection lost"), 0.0, T)
    assert m.state is State.OFFLINE and m.ringing
    m, _ = step(at(State.IDLE, ringing=True, link_up=True), ev.MuteSet(True), 0.0, T)
    assert m.state is State.MUTED and m.ringing


def test_a_ring_from_idle_with_a_session_asks_the_model_which_timer() -> None:
    m, actions = step(at(State.IDLE, link_up=True, deadline=None),
                      ev.Ring("pasta", "Say: the pasta timer is done."), 5.0, T)
    assert m.state is State.THINKING and m.ringing and m.deadline == 5.0 + T.thinking_s
    assert actions == [ev.StartRinging("pasta"), ev.SendText("Say: the pasta timer is done."),
                       ev.ExpectReply()]
    assert not m.uplink  # the microphone stays on the device
    m, actions = step(m, ev.AudioOut(b"\x00\x01"), 6.0, T)
    assert m.state is State.SPEAKING and ev.Play(b"\x00\x01") in actions


@pytest.mark.parametrize("state,link_up", [(State.IDLE, False), (State.OFFLINE, False),
                                           (State.MUTED, True), (State.LISTENING, True)])
def test_a_ring_without_a_free_session_only_rings(state: State, link_up: bool) -> None:
    m, actions = step(at(state, link_up=link_up), ev.Ring("tea", "Say it."), 0.0, T)
    assert actions == [ev.StartRinging("tea")] and m.state is state


def test_announce_goes_to_the_model_from_idle_with_a_session() -> None:
    m, actions = step(at(State.IDLE, link_up=True), ev.Announce("Dinner is ready"), 0.0, T)
    assert m.state is State.THINKING
    assert actions == [ev.SendText(h.say_exactly("Dinner is ready")), ev.ExpectReply()]
    assert '"Dinner is ready"' in h.say_exactly("Dinner is ready")


@pytest.mark.parametrize("state,link_up", [(State.IDLE, False), (State.OFFLINE, False),
                                           (State.MUTED, True), (State.ERROR, False)])
def test_announce_is_said_locally_otherwise(state: State, link_up: bool) -> None:
    m = at(state, link_up=link_up)
    assert step(m, ev.Announce("Dinner"), 0.0, T) == (m, [ev.SayLocally("Dinner")])


def test_an_announcement_never_silences_a_ringing_timer() -> None:
    m = at(State.IDLE, ringing=True, link_up=True)
    m, actions = step(m, ev.Announce("Dinner"), 0.0, T)
    assert m.ringing and ev.StopRinging() not in actions
