"""Every rule of the link policy, with `now` as a number: no sockets, no sleeps."""

from __future__ import annotations

import random

import pytest

from pivox.core import linkpolicy as lp
from pivox.core.linkpolicy import LinkPolicy, Params


class Top(random.Random):
    """A generator whose uniform(a, b) is always b: the backoff's ceiling, exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def policy(rng: random.Random | None = None, **kw: float) -> LinkPolicy:
    p = LinkPolicy(Params(**kw), rng or Top())
    p.want(0.0, True)
    return p


def up(p: LinkPolicy, now: float) -> None:
    """One connection from attempt to setupComplete at `now`."""
    assert p.next_step(now) == lp.Connect()
    p.attempt_started(now)
    p.opened(now)
    assert p.setup_complete(now) == [lp.StartSending(), lp.ReportUp()]


def refused(p: LinkPolicy, now: float) -> list[lp.Action]:
    assert p.next_step(now) == lp.Connect(), p.next_step(now)
    p.attempt_started(now)
    return p.connect_failed(now, "connection refused")


def retry_at(p: LinkPolicy, now: float) -> float:
    return now + p.retry_in(now)


# ------------------------------------------------------------------ backoff


def test_first_connect_is_at_once_and_not_wanted_waits_for_ever() -> None:
    p = LinkPolicy(Params())
    assert p.next_step(0.0) == lp.Wait(None)
    p.want(0.0, True)
    assert p.next_step(0.0) == lp.Connect()


def test_backoff_doubles_to_its_cap_with_full_jitter() -> None:
    p = policy(base_s=0.5, cap_s=4.0, probe_s=0)
    now, delays = 0.0, []
    for _ in range(6):
        (down,) = refused(p, now)
        assert isinstance(down, lp.ReportDown) and not down.config_error
        delays.append(down.retry_in_s)
        now += down.retry_in_s
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_full_jitter_draws_from_zero_to_the_ceiling_with_the_injected_rng() -> None:
    a, b = policy(random.Random(7), probe_s=0), policy(random.Random(7), probe_s=0)
    da = [refused(a, t)[0].retry_in_s for t in (0.0, 100.0, 200.0, 300.0)]  # type: ignore[union-attr]
    db = [refused(b, t)[0].retry_in_s for t in (0.0, 100.0, 200.0, 300.0)]  # type: ignore[union-attr]
    assert da == db
    assert all(0 <= d <= c for d, c in zip(da, (0.5, 1.0, 2.0, 4.0), strict=True))


def test_waiting_ends_at_the_retry_time() -> None:
    p = policy(probe_s=0)
    refused(p, 0.0)
    assert p.next_step(0.1) == lp.Wait(0.5)
    assert p.next_step(0.5) == lp.Connect()


def test_backoff_resets_only_after_a_stable_connection() -> None:
    p = policy(stable_s=10.0, probe_s=0)
    for t in (0.0, 100.0, 200.0):
        refused(p, t)
    assert p.attempt == 3
    up(p, 300.0)
    assert isinstance(p.closed(309.0, None)[0], lp.Reconnecting)  # up 9 s: not stable
    assert p.attempt == 3
    refused(p, 309.0)
    assert p.attempt == 4
    up(p, 400.0)
    p.closed(410.0, None)  # up 10 s: stable
    assert p.attempt == 0


def test_a_server_that_accepts_and_closes_at_once_is_not_retried_in_a_hot_loop() -> None:
    p = policy(probe_s=0)
    now, attempts = 0.0, 0
    while now < 60.0:
        up(p, now)
        (down,) = p.closed(now, 1011, "overloaded")
        assert isinstance(down, lp.ReportDown)
        now += down.retry_in_s
        attempts += 1
    assert attempts <= 9  # 0.5 + 1 + 2 + 4 + 8 + 16 + 30 ...


# ------------------------------------------------------------------ grace


def test_a_session_that_worked_gets_one_quiet_immediate_retry() -> None:
    p = policy(grace_after_s=2.0, probe_s=0)
    up(p, 0.0)
    assert p.closed(5.0, None) == [lp.Reconnecting("connection lost")]
    assert p.next_step(5.0) == lp.Connect()
    # the quiet retry failed: now the speaker is told
    assert refused(p, 5.0) == [lp.ReportDown("connection refused", False, 0.5)]


def test_a_short_session_gets_no_grace() -> None:
    p = policy(grace_after_s=2.0, probe_s=0)
    up(p, 0.0)
    (down,) = p.closed(1.0, None)
    assert isinstance(down, lp.ReportDown) and down.reason == "connection lost"


def test_grace_is_rearmed_once_the_speaker_was_told() -> None:
    p = policy(grace_after_s=2.0, stable_s=100.0, probe_s=0)
    up(p, 0.0)
    assert isinstance(p.closed(3.0, None)[0], lp.Reconnecting)
    up(p, 3.0)
    assert isinstance(p.closed(6.0, None)[0], lp.ReportDown)  # the second drop is told
    now = retry_at(p, 6.0)
    up(p, now)
    assert isinstance(p.closed(now + 3.0, None)[0], lp.Reconnecting)


# ------------------------------------------------------------------ configuration, overload


@pytest.mark.parametrize("code", [1007, 1008])
def test_configuration_close_codes_stop_retrying(code: int) -> None:
    p = policy()
    up(p, 0.0)
    actions = p.closed(5.0, code, "Request contains an invalid argument.")
    reason = f"server closed with {code}: Request contains an invalid argument."
    assert actions == [lp.ReportDown(reason, True, 0.0), lp.StopRetrying(reason)]
    assert p.next_step(6.0) == lp.Wait(None)
    p.want(100.0, True)  # the machine asks again later
    assert p.next_step(100.0) == lp.Connect()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_rejected_credentials_or_path_stop_retrying(status: int) -> None:
    p = policy()
    p.attempt_started(0.0)
    down, stop = p.connect_failed(0.0, f"HTTP {status}", status=status)
    assert isinstance(down, lp.ReportDown) and down.config_error
    assert isinstance(stop, lp.StopRetrying)


def test_no_key_is_a_configuration_error() -> None:
    p = policy()
    p.attempt_started(0.0)
    assert p.connect_failed(0.0, "no API key", config=True)[0] == lp.ReportDown(
        "no API key", True, 0.0)


@pytest.mark.parametrize("how", ["1011", "exhausted", "429", "503", "error message"])
def test_an_overloaded_server_gets_the_full_backoff(how: str) -> None:
    p = policy(probe_s=1.0, base_s=8.0)
    p.attempt_started(0.0)
    if how == "429" or how == "503":
        p.connect_failed(0.0, "HTTP", status=int(how))
    else:
        p.opened(0.0)
        p.setup_complete(0.0)
        if how == "error message":
            p.server_error(0.5, "RESOURCE_EXHAUSTED", "Quota exceeded")
        p.closed(1.0, 1011 if how == "1011" else 1000,
                 "Resource exhausted" if how == "exhausted" else "")
    assert p.overloaded
    wait = lp.Wait(8.0 if how in ("429", "503") else 9.0)
    assert p.next_step(1.5) == wait  # no probe before the backoff ends
    assert p.network_changed(2.0) == [] and p.next_step(2.0) == wait  # no shortcut either


# ------------------------------------------------------------------ the user, the network


def test_a_waiting_user_skips_the_rest_of_the_backoff() -> None:
    p = policy(base_s=30.0, probe_s=0)
    refused(p, 0.0)
    assert p.next_step(1.0) == lp.Wait(30.0)
    p.want(1.0, True)
    assert p.next_step(1.0) == lp.Connect()
    assert p.attempt == 1  # skipping the wait does not reset the backoff


def test_a_network_event_retries_within_its_small_jitter_and_resets_the_backoff() -> None:
    p = policy(base_s=30.0, probe_s=0, net_jitter_s=0.25)
    refused(p, 0.0)
    refused(p, 30.0)
    assert p.attempt == 2
    assert p.network_changed(40.0) == []
    assert p.attempt == 0
    assert p.next_step(40.0) == lp.Wait(40.25)
    assert p.next_step(40.25) == lp.Connect()


def test_a_network_event_restarts_an_attempt_stuck_connecting_without_a_linkdown() -> None:
    p = policy(net_jitter_s=0.25, stuck_s=1.0)
    p.attempt_started(0.0)
    assert p.network_changed(5.0) == [lp.Kill("network changed", quiet=True)]
    assert p.connect_failed(5.0, "network changed") == []
    assert p.next_step(5.25) == lp.Connect()


def test_a_network_event_lets_a_young_attempt_run_and_retries_it_at_once() -> None:
    p = policy(net_jitter_s=0.25, stuck_s=1.0, probe_s=0)
    p.attempt_started(0.0)
    assert p.network_changed(0.5) == []
    assert p.connect_failed(0.6, "Network is unreachable") == []
    assert p.next_step(0.85) == lp.Connect()
    p.attempt_started(0.85)
    p.opened(0.9)
    p.network_changed(0.95)
    p.setup_complete(1.0)  # it worked: a later failure is an ordinary one again
    assert p.closed(1.5, None) == [lp.ReportDown("connection lost", False, 0.5)]


def test_a_network_event_replaces_an_idle_session_quietly() -> None:
    p = policy()
    up(p, 0.0)
    assert p.network_changed(1.0) == [lp.Kill("network changed", quiet=True)]
    assert p.closed(1.1, None) == []  # no LinkDown, no backoff
    assert p.next_step(1.1) == lp.Connect()


def test_a_network_event_leaves_a_session_in_a_turn_alone() -> None:
    p = policy()
    up(p, 0.0)
    p.reply_expected(1.0)
    assert p.network_changed(1.5) == []
    assert p.phase is lp.Phase.UP


# ------------------------------------------------------------------ the probe


def test_probes_start_once_the_wait_is_longer_than_probe_s() -> None:
    p = policy(base_s=2.0, probe_s=3.0)
    refused(p, 0.0)  # waits 2 s: no probe
    assert p.next_step(1.0) == lp.Wait(2.0)
    refused(p, 2.0)  # waits 4 s: one probe at 5 s
    assert p.next_step(3.0) == lp.Wait(5.0)
    assert p.next_step(5.0) == lp.Probe()
    p.probe_result(5.0, False)
    assert p.next_step(5.5) == lp.Wait(6.0)  # the next probe would be after the retry


def test_probes_come_at_most_every_probe_s() -> None:
    p = policy(base_s=30.0, probe_s=3.0)
    refused(p, 0.0)
    times = []
    now = 0.0
    while True:
        step = p.next_step(now)
        if step == lp.Connect():
            break
        if step == lp.Probe():
            times.append(now)
            p.probe_result(now, False)
            continue
        assert isinstance(step, lp.Wait) and step.until is not None
        now = step.until
    assert times == [3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0, 24.0, 27.0]


def test_a_probe_that_connects_brings_the_retry_within_the_spread() -> None:
    p = policy(base_s=30.0, probe_s=3.0, spread_s=2.0)
    refused(p, 0.0)
    p.probe_result(3.0, True)
    assert p.next_step(3.0) == lp.Wait(5.0)
    assert p.next_step(5.0) == lp.Connect()


class LongBackoff(random.Random):
    """The backoff draws its ceiling (30 s); anything smaller is drawn at random."""

    def uniform(self, a: float, b: float) -> float:
        return b if b >= 30 else super().uniform(a, b)


def test_the_spread_scatters_a_fleet_after_a_probe() -> None:
    rng = LongBackoff(1)
    times = []
    for _ in range(50):
        p = LinkPolicy(Params(base_s=30.0, probe_s=3.0, spread_s=2.0), rng)
        p.want(0.0, True)
        p.attempt_started(0.0)
        p.connect_failed(0.0, "connection refused")
        p.probe_result(3.0, True)
        times.append(retry_at(p, 3.0))
    assert min(times) >= 3.0 and max(times) <= 5.0
    assert max(times) - min(times) > 1.5


def test_probes_stop_when_the_port_answers_but_the_service_does_not() -> None:
    p = policy(base_s=30.0, probe_s=3.0, spread_s=0.0)
    refused(p, 0.0)
    p.probe_result(3.0, True)
    (down,) = refused(p, 3.0)  # e.g. TLS or the websocket handshake fails
    assert isinstance(down, lp.ReportDown)
    assert p.next_step(4.0) == lp.Wait(33.0)  # no probe: only the backoff
    p.network_changed(10.0)  # a network event trusts probes again
    refused(p, 10.25)
    assert p.next_step(11.0) == lp.Wait(13.25)


def test_probe_zero_never_probes() -> None:
    p = policy(base_s=30.0, probe_s=0)
    refused(p, 0.0)
    assert p.next_step(10.0) == lp.Wait(30.0)


# ------------------------------------------------------------------ liveness


def test_setup_not_answered_in_time_is_dead() -> None:
    p = policy(setup_timeout_s=10.0)
    p.attempt_started(0.0)
    p.opened(1.0)
    assert p.tick(10.9) == []
    assert p.tick(11.1) == [lp.Kill("setup not answered")]
    assert p.tick(11.2) == []  # said once
    assert p.closed(11.3, None)[0].reason == "setup not answered"  # type: ignore[union-attr]


def test_silence_is_dead_only_while_a_reply_is_expected() -> None:
    p = policy(liveness_s=8.0)
    up(p, 0.0)
    assert p.tick(100.0) == []  # idle and quiet is fine (pongs are never required)
    p.reply_expected(100.0)
    p.frame_received(105.0)
    assert p.tick(112.0) == []
    assert p.tick(113.5) == [lp.Kill("no answer for 8 s")]


def test_an_answer_ends_the_expectation() -> None:
    p = policy(liveness_s=8.0)
    up(p, 0.0)
    p.reply_expected(1.0)
    p.generation_complete(2.0)
    assert p.tick(50.0) == []
    p.reply_expected(60.0)
    p.turn_closed(61.0)
    assert p.tick(100.0) == []


# ------------------------------------------------------------------ goAway and clean closes


def test_goaway_between_turns_hands_over_at_once_and_reconnects_now() -> None:
    p = policy()
    up(p, 0.0)
    assert p.go_away(1.0, 50.0) == [lp.HandOver()]
    assert p.tick(1.1) == []  # once
    assert p.closed(1.2, 1000, "") == []
    assert p.next_step(1.2) == lp.Connect()


def test_goaway_during_a_turn_waits_for_its_end_or_the_margin() -> None:
    p = policy(goaway_margin_s=5.0)
    up(p, 0.0)
    p.turn_opened(1.0)
    assert p.go_away(2.0, 50.0) == []
    assert p.tick(10.0) == []
    assert p.turn_closed(11.0) == [lp.HandOver()]
    q = policy(goaway_margin_s=5.0)
    up(q, 0.0)
    q.reply_expected(1.0)
    q.go_away(2.0, 10.0)
    q.frame_received(6.0)
    assert q.tick(6.9) == []
    assert q.tick(7.0) == [lp.HandOver()]


def test_a_clean_close_we_did_not_ask_for_is_a_failure() -> None:
    p = policy(grace_after_s=2.0, probe_s=0)
    up(p, 0.0)
    (down,) = p.closed(0.5, 1000, "bye")
    assert down == lp.ReportDown("server closed with 1000: bye", False, 0.5)


def test_repeated_setup_complete_starts_nothing() -> None:
    p = policy()
    up(p, 0.0)
    assert p.setup_complete(1.0) == []


def test_unwanted_closes_the_connection_and_stays_down() -> None:
    p = policy()
    up(p, 0.0)
    assert p.want(1.0, False) == [lp.Disconnect()]
    assert p.closed(1.1, 1000, "") == []
    assert p.next_step(2.0) == lp.Wait(None)
    q = policy()
    q.attempt_started(0.0)
    q.want(0.1, False)
    assert q.opened(0.2) == [lp.Disconnect()]  # unwanted during the handshake


def test_wanted_while_up_says_so_again() -> None:
    p = policy()
    up(p, 0.0)
    assert p.want(1.0, True) == [lp.ReportUp()]


def test_retry_in_counts_down_and_is_zero_when_not_waiting() -> None:
    p = policy(probe_s=0)
    assert p.retry_in(0.0) == 0.0
    refused(p, 0.0)
    assert p.retry_in(0.2) == pytest.approx(0.3)
    assert p.retry_in(9.0) == 0.0
