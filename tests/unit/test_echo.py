"""The echo path's parts on synthetic rooms: the canceller, its delay finder, the reference
timeline and the double-talk gate. Floors here are looser than the benchmark's figures
(scripts/bench echo); they catch a canceller made deaf or useless, not a decibel."""

from __future__ import annotations

import ctypes.util
import gc
import sys
from typing import Any

import numpy as np
import pytest

from pivox.audio.capture import Capture
from pivox.audio.doubletalk import DoubleTalk, energy
from pivox.audio.echo import STEP, DelayEstimator, EchoReference, SpeexEcho, _fast_len
from pivox.audio.wavfile import read_wav
from pivox.reference.room import room_ir
from pivox.reference.session import VOICES
from pivox.wake import make_engine

RATE = 16000
FRAME = 320


def speech(*names: str) -> np.ndarray:
    x = np.concatenate([np.frombuffer(read_wav(VOICES / f"{n}.wav"), dtype=np.int16)
                        for n in names]).astype(np.float64)
    return x[: len(x) // STEP * STEP]


def s16(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16).tobytes()


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2) + 1e-9))


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    return speech("weather", "fact")


@pytest.mark.parametrize("delay_s", [0.02, 0.05, 0.08])
def test_the_canceller_takes_most_of_the_echo_away_after_two_seconds(
        far: np.ndarray, delay_s: float) -> None:
    rng = np.random.default_rng(3)
    mic = np.convolve(far, room_ir(delay_s, rng))[: len(far)] + rng.normal(0, 5, len(far))
    out = np.frombuffer(SpeexEcho().process(s16(mic), s16(far)), dtype=np.int16)
    erle = db(mic[2 * RATE :]) - db(out[2 * RATE :].astype(np.float64))
    assert erle >= 18, f"{erle:.1f} dB"


def test_the_users_voice_survives_the_canceller(far: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    echo = np.convolve(far, room_ir(0.05, rng))[: len(far)]
    near = np.zeros(len(far))
    user = speech("timer")[: len(far) - 4 * RATE]
    near[4 * RATE : 4 * RATE + len(user)] = user
    aec = SpeexEcho()
    out = np.frombuffer(aec.process(s16(echo + near), s16(far)), dtype=np.int16)
    got = out[4 * RATE + aec.latency : 4 * RATE + aec.latency + len(user)].astype(np.float64)
    assert np.corrcoef(got, user[: len(got)])[0, 1] > 0.85


def test_a_canceller_whose_library_is_missing_fails_once_and_quietly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The constructor's OSError is the whole story: collecting the half-built object
    must not print "Exception ignored in: SpeexEcho.__del__"."""
    ignored: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libspeexdsp-absent.so.9")
    try:
        SpeexEcho()
    except OSError as exc:
        assert "libspeexdsp is not installed" in str(exc)
    else:
        pytest.fail("SpeexEcho started without its library")
    gc.collect()
    assert [f"{u.exc_type.__name__}: {u.exc_value}" for u in ignored] == []


def test_the_canceller_refuses_part_of_a_frame() -> None:
    with pytest.raises(ValueError, match="whole 320-sample frames"):
        SpeexEcho().process(bytes(400), bytes(400))


@pytest.mark.parametrize("echo_s", [0.07, 0.35, -0.06])
def test_delay_estimator_finds_the_direct_path_and_only_moves_when_sure(
        far: np.ndarray, echo_s: float) -> None:
    """Echo after its reference, near the finder's reach, and before it (the reference
    behind: a latency the drivers did not report)."""
    rng = np.random.default_rng(5)
    late = max(0.0, -echo_s)  # the reference, delayed by as much
    mic = np.convolve(far, room_ir(max(0.0, echo_s), rng))[: len(far)]
    mic += rng.normal(0, 10, len(far))
    ref = np.concatenate([np.zeros(round(late * RATE)), far])[: len(far)]
    est = DelayEstimator(target_ms=40)
    fixes = []
    for i in range(0, 2 * RATE, FRAME):
        est.add(s16(mic[i : i + FRAME]), s16(ref[i : i + FRAME]))
        if i % (RATE // 2) == 0 and i:
            fixes.append(est.correction_s())
    answered = [f for f in fixes if f is not None]
    assert answered, fixes
    assert fixes[0] is None  # one estimate alone is not acted on
    # kept at 40 ms ahead of its echo
    assert all(abs(f - (echo_s - 0.040)) < 0.002 for f in answered), answered


def test_the_delay_finders_transform_length_is_the_next_quick_one() -> None:
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    quick = [m for m in range(1, 4000) if smooth(m)]
    for n in range(1, 3000):
        assert _fast_len(n) == next(m for m in quick if m >= n), n
    assert _fast_len(16000 + 6400) == 22500  # a second of audio and the 400 ms reach


def test_delay_estimator_gives_no_answer_when_the_microphone_holds_no_echo(
        far: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    est = DelayEstimator()
    other = speech("timer")
    for i in range(0, 2 * RATE, FRAME):
        est.add(s16(other[i : i + FRAME] + rng.normal(0, 10, FRAME)), s16(far[i : i + FRAME]))
        est.correction_s()
    assert est.correction_s() is None


def test_reference_is_read_back_where_it_was_heard() -> None:
    ref = EchoReference()
    x = (np.arange(960) % 200).astype(np.int16)
    for k in range(3):  # three periods, their times jittering by a millisecond
        ref.add(x[k * 320 : (k + 1) * 320], 10.0 + k * 0.02 + (0.001 if k == 1 else 0.0))
    got = np.frombuffer(ref.read(10.01, 320), dtype=np.int16)
    assert np.array_equal(got, x[160:480])  # laid end to end, not torn by the jitter
    assert not np.frombuffer(ref.read(5.0, 320), dtype=np.int16).any()  # unknown: silence


def frames_of(x: np.ndarray) -> list[bytes]:
    return [s16(x[i : i + FRAME]) for i in range(0, len(x) - FRAME + 1, FRAME)]


def test_double_talk_holds_back_the_echo_and_lets_the_user_through(far: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    echo = np.convolve(far, room_ir(0.03, rng))[: len(far)] + rng.normal(0, 10, len(far))
    user = np.zeros(len(far))
    words = speech("timer")[: 2 * RATE]
    user[5 * RATE : 5 * RATE + len(words)] = words
    residual = echo * 0.05  # what a converged canceller leaves (26 dB down)
    dt = DoubleTalk()
    passed = []
    for i, (r, m, o) in enumerate(zip(frames_of(far), frames_of(echo + user),
                                      frames_of(residual + user), strict=False)):
        passed.append((i * FRAME / RATE, dt.update(energy(r), energy(m), energy(o)),
                       db(residual[i * FRAME : (i + 1) * FRAME]) > 30,  # echo is audible
                       energy(s16(user[i * FRAME : (i + 1) * FRAME]))))
    echo_only = [p for t, p, audible, _ in passed if 1.0 < t < 5.0 and audible]
    assert len(echo_only) > 100 and not any(echo_only), "residual echo reached the model"
    # in the reply's pauses there is nothing to hold back: the room is heard as it is
    assert any(p for t, p, audible, _ in passed if t < 5.0 and not audible)
    voice = sum(e for *_, e in passed)
    heard = sum(e for _, p, _, e in passed if p)
    assert heard > 0.8 * voice, f"only {heard / voice:.0%} of the user's voice got through"
    assert dt.opened >= 1


def test_double_talk_passes_everything_once_the_speaker_is_quiet() -> None:
    dt = DoubleTalk()
    loud = np.random.default_rng(8).normal(0, 3000, FRAME)
    assert dt.update(0.0, energy(s16(loud)), energy(s16(loud)))


def test_in_a_room_that_hardly_echoes_the_user_gets_through_once_it_has_listened(
        far: np.ndarray) -> None:
    """Headphones, or a microphone across the room: the reply plays loud, the microphone
    hears only the room's noise; after a second of that the user is heard over the reply."""
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 10, len(far))
    words = speech("timer")[: RATE]
    mic = noise.copy()
    mic[3 * RATE : 3 * RATE + len(words)] += words * 0.3  # a quiet voice, 10 dB down
    dt = DoubleTalk()
    early = [dt.update(energy(r), energy(m), energy(m))
             for r, m in zip(frames_of(far[:RATE // 2]), frames_of(mic[:RATE // 2]),
                             strict=True)]
    later = [dt.update(energy(r), energy(m), energy(m))
             for r, m in zip(frames_of(far[RATE // 2 :]), frames_of(mic[RATE // 2 :]),
                             strict=False)]
    assert dt.coupling_db < -12  # what it learnt: the room gives almost nothing back
    assert not any(early[5:])  # before it knew the room, nothing passed while it played
    assert sum(later[(3 * RATE - RATE // 2) // FRAME :][: len(words) // FRAME]) > 20


def test_a_reply_after_the_user_spoke_over_the_last_ones_end_is_held_from_its_start(
        far: np.ndarray) -> None:
    """The user starts the next question as a reply dies away, and the next reply begins:
    its onset, before the canceller catches up, must not reach the model on the floor the
    user held at the end of the last one (the server would take it for the user)."""
    rng = np.random.default_rng(12)
    ir = room_ir(0.03, rng)
    words = speech("timer")[: 2 * RATE]
    timeline = EchoReference()
    cap = Capture(lambda: None, make_engine(), None, lambda _e: None,  # type: ignore[arg-type]
                  echo=SpeexEcho(), echo_ref=timeline)
    # The canceller learns the room over the first reply, which ends on a loud word (as a
    # flushed one does): its reverberation outlasts the time the gate is asked.
    loudest = int(np.argmax(np.abs(far[: len(far) // 2])))
    reply = np.concatenate([far, far[:loudest]])
    silence = np.zeros(len(words) + RATE)
    played = np.concatenate([reply, silence, far])
    mic = np.convolve(played, ir)[: len(played)] + rng.normal(0, 10, len(played))
    ends = len(reply)
    mic[ends : ends + len(words)] += words  # the user speaks as it dies away
    gate = []
    for k, i in enumerate(range(0, len(played) - FRAME + 1, FRAME)):
        at = 1000.0 + k * FRAME / RATE
        timeline.add(played[i : i + FRAME].astype(np.int16), at)
        cap.cancel_echo(s16(mic[i : i + FRAME]), at + FRAME / RATE)
        gate.append(cap.doubletalk.talking)
    second = (len(reply) + len(silence)) // FRAME
    assert any(gate[ends // FRAME : second]), "the user over the reply's tail was not heard"
    assert not any(gate[second : second + 15]), "the next reply's onset went to the model"


def test_an_echo_that_comes_late_is_not_taken_for_a_quiet_room(far: np.ndarray) -> None:
    """A busy sound server can leave the reference 200 ms ahead of its echo before the
    delay finder moves it: the microphone is quiet at each word's start only because the
    echo has not come yet. Taken for a quiet room, the echo would reach the model as the
    user and the speaker would interrupt itself, reply after reply."""
    rng = np.random.default_rng(21)
    late = int(0.2 * RATE)
    echo = np.concatenate([np.zeros(late), 0.5 * far])[: len(far)]
    mic = echo + rng.normal(0, 10, len(far))
    dt = DoubleTalk()
    passed = [dt.update(energy(r), energy(m), energy(m))  # a canceller still learning
              for r, m in zip(frames_of(far), frames_of(mic), strict=False)]
    assert not dt.quiet_room
    assert not _echo_passed(passed, echo, RATE // FRAME), "the late echo reached the model"


def _echo_passed(passed: list[bool], echo: np.ndarray, start: int) -> list[int]:
    """Frames from `start` on that held echo above the noise (the room's 20 dB) and went
    to the model; the noise between two passages may."""
    loud = [energy(f) > 1000 for f in frames_of(echo)]
    return [i for i in range(start, len(passed)) if passed[i] and loud[i]]


def test_a_room_taken_for_quiet_that_echoes_is_learnt_afresh(far: np.ndarray) -> None:
    """Headphones unplugged, or a quiet proof that was wrong: once the canceller is seen
    taking echo away, the quiet verdict goes, and the echo no longer passes as the user."""
    rng = np.random.default_rng(22)
    half = len(far) // 2
    echo = np.convolve(far, room_ir(0.03, rng))[: len(far)]
    echo[:half] = 0
    mic = rng.normal(0, 10, len(far)) + echo
    out = mic.copy()
    out[half:] = rng.normal(0, 10, len(far) - half) + 0.05 * (mic[half:])  # 26 dB down
    dt = DoubleTalk()
    passed = [dt.update(energy(r), energy(m), energy(o)) for r, m, o in
              zip(frames_of(far), frames_of(mic), frames_of(out), strict=False)]
    first = half // FRAME
    assert not any(passed[first // 2 : first - 5]), "noise in a quiet room passed as the user"
    assert not dt.quiet_room, "the room that echoes is still taken for quiet"
    assert not _echo_passed(passed, echo, first + RATE // FRAME), "the echo passed as the user"
