"""The capture thread's wake engine rests while the user has the floor: the machine ignores
the wake word then, and the engine is the thread's costliest part. A stop word armed keeps
it listening, and after the rest it starts afresh, so what it held cannot fire late."""

from __future__ import annotations

from pathlib import Path

from pivox.audio.capture import Capture
from pivox.audio.wavfile import read_wav
from pivox.core.formats import FRAME_BYTES
from pivox.core.wakeword import WakeEngine
from pivox.wake import make_engine

WAKE = read_wav(Path(__file__).parents[1] / "fixtures" / "wake_okay_nabu_en_160.wav")


def heard(cap: Capture, pcm: bytes) -> list[str]:
    words = []
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        word = cap._spot(pcm[i : i + FRAME_BYTES])
        if word:
            words.append(word)
    return words


def capture(engine: WakeEngine | None = None) -> Capture:
    return Capture(lambda: None, engine or make_engine(), None,  # type: ignore[arg-type]
                   lambda _e: None)


def test_the_wake_engine_rests_while_the_machine_listens() -> None:
    cap = capture()
    cap.observe("state", {"state": "listening"})
    assert heard(cap, WAKE) == []
    cap.observe("state", {"state": "idle"})
    assert heard(cap, WAKE) == ["okay_nabu"]


def test_what_it_held_before_the_rest_is_not_joined_to_what_follows() -> None:
    """Half a wake word, a turn of the user's, then the other half: two halves seconds
    apart are not a wake word."""
    cap = capture()
    half = len(WAKE) // 2 // FRAME_BYTES * FRAME_BYTES
    assert heard(cap, WAKE[:half]) == []
    cap.observe("state", {"state": "listening"})
    heard(cap, bytes(FRAME_BYTES * 100))
    cap.observe("state", {"state": "idle"})
    assert heard(cap, WAKE[half:] + bytes(FRAME_BYTES * 50)) == []


def test_an_armed_stop_word_keeps_it_listening() -> None:
    engine = make_engine()
    engine.stop_armed = True
    cap = capture(engine)
    cap.observe("state", {"state": "listening"})
    assert heard(cap, WAKE) == ["okay_nabu"]
