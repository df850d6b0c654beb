"""Conversations as people hold them: the wake word's end, turns, follow-ups, time and place."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_codec import validate_client_frame

from pivox import config
from pivox.audio.preroll import Cut, keyword_cut
from pivox.core import events as ev
from pivox.core.handlers import asks
from pivox.core.machine import Machine, State, Timings, step
from pivox.core.models import PROFILES, profile_for
from pivox.link import codec as lc
from pivox.link import tools
from pivox.link.options import setup_options
from pivox.reference import rules

T = Timings()


def listening(**kw: object) -> Machine:
    return Machine(State.LISTENING, deadline=100.0, link_up=True, uplink=True, **kw)  # type: ignore[arg-type]


def run(m: Machine, *events: ev.Event, t: Timings = T, now: float = 10.0
        ) -> tuple[Machine, list[ev.Action]]:
    out: list[ev.Action] = []
    for e in events:
        m, a = step(m, e, now, t)
        out += a
    return m, out


def a_reply(m: Machine, text: str, t: Timings = T) -> tuple[Machine, list[ev.Action]]:
    """Speech, its end, a reply with `text` transcribed, the reply played out."""
    return run(m, ev.SpeechStarted(), ev.SpeechEnded(), ev.AudioOut(b"\0\0"),
               *[ev.ReplySaid(w) for w in text.split("|")], ev.TurnComplete(),
               ev.PlaybackDrained(), t=t)


@pytest.mark.parametrize(("text", "asked"), [
    ("It will rain.| Shall I remind you?", True), ("Shall I? No.", False),
    ("Do you want the forecast? ", True), ('He said "really?"', True), ("", False),
    ("Okay.", False)])
def test_a_reply_asks_when_its_transcription_ends_with_a_question(text: str, asked: bool
                                                                   ) -> None:
    assert asks(text.replace("|", "")) is asked


def test_a_reply_that_asks_keeps_listening_without_the_wake_word() -> None:
    m, acts = a_reply(listening(), "It will rain later.| Shall I set a reminder?")
    assert m.state is State.LISTENING and m.follow_up and m.uplink
    assert m.deadline == 10.0 + T.follow_up_s
    assert ev.PlayPrompt("wake") not in acts and ev.StopUplink() not in acts
    # Nobody takes it up: back to idle, quietly (no "I heard nothing" earcon).
    m, acts = run(m, ev.Timeout(), now=100.0)
    assert m.state is State.IDLE and acts == [ev.StopUplink()]


def test_a_reply_that_does_not_ask_goes_back_to_idle() -> None:
    m, acts = a_reply(listening(), "It will rain later.")
    assert m.state is State.IDLE and ev.StopUplink() in acts


@pytest.mark.parametrize(("mode", "text", "listens"), [
    ("always", "It will rain.", True), ("never", "Shall I?", False),
    ("question", "Shall I?", True)])
def test_follow_up_modes(mode: str, text: str, listens: bool) -> None:
    m, _ = a_reply(listening(), text, t=replace(T, follow_up=mode))
    assert (m.state is State.LISTENING) is listens


def test_the_next_reply_is_judged_afresh() -> None:
    m, _ = a_reply(listening(), "Shall I?")
    m, _ = a_reply(m, "Done.")
    assert m.state is State.IDLE


def test_no_speech_in_the_listening_window_ends_with_a_short_earcon() -> None:
    m, acts = run(listening(), ev.Timeout(), now=100.0)
    assert m.state is State.IDLE and acts == [ev.StopUplink(), ev.PlayPrompt("no_speech")]


def test_the_user_s_turn_opens_on_speech_and_closes_at_its_end_once() -> None:
    m, acts = run(listening(), ev.SpeechStarted())
    assert acts == [ev.UserActivity(True)] and m.activity
    m, acts = run(m, ev.SpeechEnded())
    assert acts == [ev.UserActivity(False), ev.ExpectReply()] and not m.activity
    m, acts = run(m, ev.SpeechEnded())  # a late edge changes nothing
    assert ev.UserActivity(False) not in acts


def test_stopping_the_uplink_closes_an_open_turn_first() -> None:
    m, _ = run(listening(), ev.SpeechStarted())
    m, acts = run(m, ev.TalkPressed())
    assert acts.index(ev.UserActivity(False)) < acts.index(ev.StopUplink())
    assert not m.activity


def test_no_turn_opens_without_the_uplink() -> None:
    m = replace(listening(), state=State.SPEAKING, uplink=False)
    _, acts = run(m, ev.SpeechStarted())
    assert ev.UserActivity(True) not in acts


# ---------------------------------------------------------------- where the keyword ended

def frames(levels: list[float], start: float = 0.0) -> list[tuple[bytes, float, float]]:
    return [(bytes(640), start + 0.02 * (i + 1), lvl) for i, lvl in enumerate(levels)]


def test_the_cut_falls_where_the_keyword_stopped_before_a_pause() -> None:
    # 0.6 s of keyword (frames end at 0.02..0.60), then quiet; the engine fired at 0.78.
    f = frames([-20.0] * 30 + [-60.0] * 15)
    i = keyword_cut(f, Cut(0.78, (0.09, 0.27)), floor_db=-60.0)
    assert f[i][1] == pytest.approx(0.62)


def test_straight_through_the_cut_keeps_every_word_of_the_question() -> None:
    # Keyword to 0.60, question from 0.60 with a 40 ms gap between its words at 0.70.
    f = frames([-20.0] * 35 + [-60.0] * 2 + [-20.0] * 10)
    cut = Cut(0.80, (0.09, 0.27))
    i = keyword_cut(f, cut, floor_db=-60.0)
    assert f[i][1] <= 0.60  # starts inside the keyword's tail, never inside the question


def test_a_wake_word_said_over_digital_silence_is_still_cut() -> None:
    """The floor may be far below the room (silence before anyone spoke): the keyword's own
    loudness says what quiet is."""
    f = frames([-15.0] * 30 + [-60.0] * 15)
    i = keyword_cut(f, Cut(0.78, (0.09, 0.27)), floor_db=-96.0)
    assert f[i][1] == pytest.approx(0.62)


# ---------------------------------------------------------------- setup, per model profile

def cfg_with(tmp_path, extra: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "pivox.toml"
    path.write_text(extra)
    return config.load(path)


@pytest.mark.parametrize("model", sorted(PROFILES))
@pytest.mark.parametrize("mode", ["server", "local"])
def test_every_model_accepts_the_setup_and_turn_frames(tmp_path, model: str, mode: str) -> None:
    cfg = cfg_with(tmp_path, f'[link]\nmodel = "{model}"\n[conversation]\nturn_detection = '
                             f'"{mode}"\nend_sensitivity = "low"\n[home]\nlocation = '
                             '"Leeds, United Kingdom"\ntimezone = "Europe/London"\n')
    opts = setup_options(cfg)
    prof = profile_for(model)[0]
    c = lc.LiveCodec(prof)
    c.start(opts)
    c.receive(b'{"setupComplete":{}}')
    if mode == "local":
        c.send_activity(True)
        c.send_audio(bytes(640))
        c.send_activity(False)
    frames = c.frames_to_send()
    for frame in frames:
        validate_client_frame(frame)
    setup = json.loads(frames[0])["setup"]
    checked = rules.check_setup(setup)  # the reference server's per-model rules
    assert checked.automatic_activity is (mode == "server")
    aad = setup["realtimeInputConfig"]["automaticActivityDetection"]
    if mode == "server":
        assert aad["endOfSpeechSensitivity"] == "END_SENSITIVITY_LOW"
        assert aad["silenceDurationMs"] == cfg.link.silence_ms == checked.silence_ms
    else:
        assert aad == {"disabled": True}
        assert frames[1:] != [] and json.loads(frames[1]) == {"realtimeInput": {
            "activityStart": {}}}
    assert "Leeds, United Kingdom" in setup["systemInstruction"]["parts"][0]["text"]
    decl = {d["name"]: d for d in setup["tools"][0]["functionDeclarations"]}
    assert "get_local_time" in decl
    assert decl["get_local_time"].get("behavior") == ("BLOCKING" if prof.async_tools else None)
    assert setup.get("outputAudioTranscription") == {}  # follow-up = "question" reads it


def test_local_time_is_read_when_called_in_the_configured_zone() -> None:
    clock = iter([1_800_000_000.0, 1_800_000_000.0 + 3 * 3600])
    device = tools.Device(set_volume=lambda _v: None, stop=lambda: None,
                          timezone="Asia/Tokyo", clock=lambda: next(clock))
    call = lc.FunctionCall("fc1", "get_local_time", {})
    first, _ = tools.run(call, device)
    later, scheduling = tools.run(call, device)
    assert first["result"]["iso"] == "2027-01-15T17:00:00+09:00"
    assert first["result"]["timezone"] == "Asia/Tokyo"
    assert later["result"]["time"] == "20:00"  # hours later, a fresh reading
    assert scheduling == "WHEN_IDLE"


def test_home_config_is_validated(tmp_path) -> None:
    cfg = cfg_with(tmp_path, "")
    assert (cfg.home.timezone, cfg.home.units, cfg.conversation.turn_detection,
            cfg.conversation.follow_up, cfg.conversation.follow_up_s) == (
        "", "metric", "server", "question", 6.0)
    with pytest.raises(config.ConfigError, match=r"home\.timezone"):
        cfg_with(tmp_path, '[home]\ntimezone = "Mars/Olympus_Mons"\n')
    with pytest.raises(config.ConfigError, match=r"conversation\.turn_detection"):
        cfg_with(tmp_path, '[conversation]\nturn_detection = "telepathy"\n')
    with pytest.raises(config.ConfigError, match=r"home\.units"):
        cfg_with(tmp_path, '[home]\nunits = "furlongs"\n')
