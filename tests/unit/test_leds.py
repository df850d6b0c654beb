"""The LED patterns as a table: every state has a look, and each look is recognisable."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivox.core import leds
from pivox.core.leds import describe, pattern, render_ansi
from pivox.core.machine import State

SIZES = (1, 2, 3, 12, 24)
TIMES = [i * 0.05 for i in range(80)]  # 4 s: longer than every period in the table


def frames(state: State, count: int, level: float = 0.5) -> set[tuple]:
    return {pattern(state, level, t, count) for t in TIMES}


def brightness(colours: tuple) -> int:
    return sum(sum(c) for c in colours)


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize("state", list(State))
def test_every_state_has_a_pattern_of_the_right_length_and_range(state: State, count: int):
    for t in TIMES:
        colours = pattern(state, 0.5, t, count)
        assert len(colours) == count
        for colour in colours:
            assert len(colour) == 3
            assert all(isinstance(c, int) and 0 <= c <= 255 for c in colour)


def test_the_table_covers_every_state_with_words():
    assert set(leds.LOOKS) == set(State)
    assert len({describe(s) for s in State}) == len(State)


@pytest.mark.parametrize("count", SIZES)
@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(list(State), 2)))
def test_states_are_told_apart(a: State, b: State, count: int):
    # Over a few seconds, the two states never show the same set of frames.
    assert frames(a, count) != frames(b, count)


@pytest.mark.parametrize("count", SIZES)
def test_idle_is_dark(count: int):
    assert frames(State.IDLE, count) == {((0, 0, 0),) * count}


@pytest.mark.parametrize("count", SIZES)
def test_muted_is_solid_red(count: int):
    (only,) = frames(State.MUTED, count)
    assert all(r > 200 and g == 0 and b == 0 for r, g, b in only)


@pytest.mark.parametrize("count", SIZES)
def test_listening_is_solid_cyan(count: int):
    (only,) = frames(State.LISTENING, count)
    assert all(r == 0 and g > 100 and b > 100 for r, g, b in only)


@pytest.mark.parametrize(("state", "period"), [(State.OFFLINE, 2.0), (State.ERROR, 0.5)])
def test_blinks_start_lit_then_go_dark(state: State, period: float):
    lit = pattern(state, 0.0, 0.0, 12)
    assert brightness(lit) > 0
    assert brightness(pattern(state, 0.0, period * 0.75, 12)) == 0
    assert pattern(state, 0.0, period, 12) == lit  # and again next period


def test_offline_is_amber_and_slower_than_error():
    r, g, b = pattern(State.OFFLINE, 0.0, 0.0, 1)[0]
    assert r > g > b == 0
    offline_on = sum(brightness(pattern(State.OFFLINE, 0, t, 1)) > 0 for t in TIMES)
    error_on = sum(brightness(pattern(State.ERROR, 0, t, 1)) > 0 for t in TIMES)
    switches = {s: sum(
        (brightness(pattern(s, 0, t1, 1)) > 0) != (brightness(pattern(s, 0, t2, 1)) > 0)
        for t1, t2 in itertools.pairwise(TIMES)) for s in (State.OFFLINE, State.ERROR)}
    assert 0 < offline_on < len(TIMES) and 0 < error_on < len(TIMES)
    assert switches[State.ERROR] > 2 * switches[State.OFFLINE] > 0


@pytest.mark.parametrize("count", SIZES)
def test_speaking_brightness_rises_with_level(count: int):
    levels = [0.0, 0.1, 0.3, 0.6, 1.0]
    seen = [brightness(pattern(State.SPEAKING, lv, 1.0, count)) for lv in levels]
    assert seen == sorted(seen) and seen[0] < seen[-1]
    assert seen[0] > 0  # silence between words stays visibly lit
    # Below the loudest peaks, speaking is dimmer than listening's steady cyan.
    assert seen[-2] < brightness(pattern(State.LISTENING, 0.0, 1.0, count))


@pytest.mark.parametrize("state", [State.BOOTING, State.THINKING])
def test_chases_move_round_the_ring(state: State):
    heads = [max(range(12), key=lambda i: sum(pattern(state, 0, t, 12)[i])) for t in TIMES]
    assert len(set(heads)) == 12  # the brightest pixel visits every position
    assert len(frames(state, 1)) > 1  # and a single pixel still animates


def test_thinking_spins_faster_than_booting():
    def turns(state: State) -> int:
        heads = [pattern(state, 0, t, 12).index(max(pattern(state, 0, t, 12))) for t in TIMES]
        return sum(b < a for a, b in itertools.pairwise(heads))  # wrapped past pixel 0

    assert turns(State.THINKING) > turns(State.BOOTING) >= 1


@given(state=st.sampled_from(list(State)), level=st.floats(allow_nan=True),
       t=st.floats(allow_nan=True), count=st.integers(-2, 64))
def test_any_input_gives_valid_colours(state: State, level: float, t: float, count: int):
    colours = pattern(state, level, t, count)
    assert len(colours) == max(count, 0)
    assert all(0 <= c <= 255 for colour in colours for c in colour)


def test_render_ansi_draws_24_bit_blocks_and_resets():
    text = render_ansi(((255, 0, 0), (0, 200, 255)))
    assert re.findall(r"\x1b\[48;2;(\d+);(\d+);(\d+)m  ", text) == [
        ("255", "0", "0"), ("0", "200", "255")]
    assert text.endswith("\x1b[0m")
    assert render_ansi(()) == ""


def test_ringing_overrides_every_state_with_its_own_flash() -> None:
    from pivox.core.leds import Alert, shown

    assert shown(State.SPEAKING, ringing=False) is State.SPEAKING
    for state in State:
        what = shown(state, ringing=True)
        assert what is Alert.RINGING
        lit = leds.pattern(what, 0.0, 0.1, 12)
        dark = leds.pattern(what, 0.0, 0.4, 12)
        assert lit == ((200, 200, 200),) * 12 and dark == ((0, 0, 0),) * 12
    flashes = {leds.look_of(s) for s in State}
    assert leds.look_of(Alert.RINGING) not in flashes  # unlike any state
