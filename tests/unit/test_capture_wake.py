"""The capture thread's wake engine rests while the user has the floor: the machine ignores
the wake word then, and the engine is the thread's costliest part. A stop word armed keeps
it listening, and after the rest it starts afresh, so what it held cannot fire late."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivox.audio.capture import Capture
from pivox.audio.vad import SpeechDetector
from pivox.audio.wavfile import read_wav
from pivox.core import events as ev
from pivox.core.formats import FRAME_BYTES
from pivox.core.wakeword import WakeEngine
from pivox.wake import make_engine

WAKE = read_wav(Path(__file__).parents[1] / "fixtures" / "wake_okay_nabu_en_160.wav")


class QueueMic:
    """A microphone the test speaks into frame by frame; the capture thread reads it."""

    name = "queue"
    overruns = 0
    backlog_s = 0.0

    def __init__(self) -> None:
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.reads = 0  # one more than the frames the thread is done with

    def read(self) -> bytes:
        self.reads += 1
        return self.frames.get()

    def close(self) -> None:
        pass


class Rig:
    def __init__(self, engine: WakeEngine, speech: SpeechDetector | None = None) -> None:
        self.mic = QueueMic()
        self.events: list[ev.Event] = []
        self.cap = Capture(lambda: self.mic, engine, None,  # type: ignore[arg-type]
                           self.events.append, speech=speech)
        self.fed = 0

    def heard(self, pcm: bytes) -> list[str]:
        """Plays `pcm` to the thread and waits for it to take every frame: the words it woke on."""
        before = len(self.events)
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
            self.mic.frames.put(pcm[i : i + FRAME_BYTES])
            self.fed += 1
        deadline = time.monotonic() + 10
        while self.mic.reads <= self.fed and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.mic.reads == self.fed + 1, "the capture thread stopped taking frames"
        return [e.keyword for e in self.events[before:] if isinstance(e, ev.WakeDetected)]


@contextlib.contextmanager
def running(engine: WakeEngine | None = None, speech: SpeechDetector | None = None
            ) -> Iterator[Rig]:
    r = Rig(engine or make_engine(), speech)
    r.cap.start()
    try:
        yield r
    finally:
        stopping = threading.Thread(target=r.cap.stop)
        stopping.start()
        while stopping.is_alive():  # frames let the read in progress return
            r.mic.frames.put(bytes(FRAME_BYTES))
            stopping.join(0.01)


@pytest.fixture
def rig() -> Iterator[Rig]:
    with running() as r:
        yield r


def test_the_wake_engine_rests_while_the_machine_listens(rig: Rig) -> None:
    rig.cap.observe("state", {"state": "listening"})
    assert rig.heard(WAKE) == []
    rig.cap.observe("state", {"state": "idle"})
    assert rig.heard(WAKE) == ["okay_nabu"]


def test_what_it_held_before_the_rest_is_not_joined_to_what_follows(rig: Rig) -> None:
    """Half a wake word, a turn of the user's, then the other half: two halves seconds
    apart are not a wake word."""
    half = len(WAKE) // 2 // FRAME_BYTES * FRAME_BYTES
    assert rig.heard(WAKE[:half]) == []
    rig.cap.observe("state", {"state": "listening"})
    rig.heard(bytes(FRAME_BYTES * 100))
    rig.cap.observe("state", {"state": "idle"})
    assert rig.heard(WAKE[half:] + bytes(FRAME_BYTES * 50)) == []


def test_an_armed_stop_word_keeps_it_listening() -> None:
    engine = make_engine()
    engine.stop_armed = True
    with running(engine) as r:
        r.cap.observe("state", {"state": "listening"})
        assert r.heard(WAKE) == ["okay_nabu"]


def test_between_streams_the_next_speech_detector_is_warmed_ahead() -> None:
    """So the wake word does not pay for 0.8 s of detector steps in one burst."""
    speech = SpeechDetector()
    with running(speech=speech) as r:
        r.heard(bytes(FRAME_BYTES * 20))  # 0.4 s of a quiet room: half way
        assert not speech.warmed
        r.heard(bytes(FRAME_BYTES * 25))
        assert speech.warmed
