"""Full duplex through a room (room.py): the speaker hears its own reply, which says its own
wake word, while the microphone streams to the reference server the whole time.

With the echo canceller it neither wakes itself nor lets the server's activity detection
hear enough of itself to interrupt; the user talking over it still interrupts it. Without
the canceller the same room makes it interrupt itself, which shows the room can tell.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from live import DATA, make_config, run_daemon, wait_for
from room import Room

from pivox.audio.wavfile import read_wav
from pivox.reference.server import ReferenceServer

NAME_REPLIES = Path(__file__).parents[1] / "fixtures" / "replies_with_name"
QUESTION = read_wav(DATA / "demo_mic.wav")  # "Okay Nabu. What's the weather like today?"
BARGE = read_wav(Path(__file__).parents[1] / "fixtures" / "question_16k.wav")


def state(run: Any) -> str:
    return run.daemon.m.state.value


async def converse(run: Any, room: Room, server: ReferenceServer) -> dict[str, float]:
    """Ask, and wait for the reply to be played out; returns what the server heard."""
    room.say(QUESTION)
    assert await wait_for(lambda: state(run) == "speaking", 15), run.states[-5:]
    heard_before = server.stats.audio_bytes_in
    assert await wait_for(lambda: state(run) != "speaking", 30)
    audio = run.daemon.status()["audio"]
    return {"streamed_s": (server.stats.audio_bytes_in - heard_before) / 32000,
            "erle_db": audio["erle_db"], "converged": audio["echo_converged"]}


def run_in_room(tmp_path: Path, room: Room, extra: str, script: Any) -> tuple[Any, Any, Any]:
    """Run the daemon in `room` against a server whose replies say the wake word, while
    `script(run, server)` talks to it; returns the server, the run and what script gave."""
    async def main() -> tuple[Any, Any, Any]:
        server = ReferenceServer(reply_dir=NAME_REPLIES)
        await server.start()
        out: dict[str, Any] = {}

        async def during(run: Any) -> None:
            assert await wait_for(lambda: state(run) == "idle", 15), run.states
            out["value"] = await script(run, server)

        try:
            cfg = make_config(tmp_path, server.url, extra=extra)
            run = await run_daemon(cfg, lambda r: True, timeout=1, during=during,
                                   source=room.open_source, sink=room.open_sink)
        finally:
            await server.stop()
        return server, run, out["value"]

    return asyncio.run(main())


@pytest.mark.parametrize("gain", [1.0, 3.0], ids=["echo-10dB", "echo-louder-than-the-reply"])
def test_replies_saying_the_wake_word_never_wake_or_interrupt_it_in_full_duplex(
        tmp_path: Path, gain: float) -> None:
    room = Room(delay_s=0.03, gain=gain)

    async def script(run: Any, server: ReferenceServer) -> list[dict[str, float]]:
        return [await converse(run, room, server) for _ in range(3)]

    server, run, replies = run_in_room(tmp_path, room, '[conversation]\nduplex = "auto"\n',
                                         script)
    print("replies:", replies)
    st = run.final_status
    assert server.stats.interruptions == 0, "the speaker interrupted itself"
    assert server.stats.replies == 3
    assert st["wake"]["detections"] == 3, "the reply's own wake word woke the speaker"
    # From the second reply on the canceller has learnt the room and the microphone streams
    # to the server through every reply: the server heard the residual echo, and let it be.
    assert replies[-1]["converged"]
    assert replies[-1]["streamed_s"] > 3.0, replies


def test_talking_over_a_reply_interrupts_it_with_the_canceller_on(tmp_path: Path) -> None:
    room = Room(delay_s=0.03, gain=1.0)

    async def script(run: Any, server: ReferenceServer) -> dict[str, Any]:
        learnt = await converse(run, room, server)  # the canceller learns the room
        room.say(QUESTION)
        assert await wait_for(lambda: state(run) == "speaking", 15)
        await asyncio.sleep(2.0)  # well into the reply, past its own "Okay Nabu"
        before = {"interruptions": server.stats.interruptions,
                  "wakes": run.daemon.status()["wake"]["detections"]}
        room.say(BARGE)  # "what time is it", no wake word: only the model can hear this
        said_at = asyncio.get_running_loop().time()
        heard = await wait_for(lambda: server.stats.interruptions > before["interruptions"], 5)
        took = asyncio.get_running_loop().time() - said_at
        stopped = await wait_for(lambda: state(run) != "speaking", 1)
        return {"learnt": learnt, "before": before, "heard": heard, "took_s": took,
                "stopped": stopped, "flushes": run.daemon.player.stats.flushes,
                "talked_over": run.daemon.capture.doubletalk.opened}

    _, run, out = run_in_room(tmp_path, room, '[conversation]\nduplex = "auto"\n', script)
    print(out)
    assert out["learnt"]["converged"]
    assert out["before"] == {"interruptions": 0, "wakes": 2}, "it interrupted itself"
    assert out["heard"], "talking over the reply did not reach the model"
    assert out["took_s"] < 1.5, out  # the words' start, through the server's detection
    assert out["stopped"] and out["flushes"] >= 1, "the reply kept playing"
    assert run.final_status["wake"]["detections"] == 2  # the model heard it, not the wake word


def test_the_wake_word_over_a_reply_stops_it_locally(tmp_path: Path) -> None:
    room = Room(delay_s=0.03, gain=1.0)

    async def script(run: Any, server: ReferenceServer) -> dict[str, Any]:
        room.say(QUESTION)
        assert await wait_for(lambda: state(run) == "speaking", 15)
        await asyncio.sleep(2.0)
        room.say(QUESTION)  # "Okay Nabu. What's the weather like today?" over the reply
        assert await wait_for(lambda: run.daemon.status()["wake"]["detections"] == 2, 5), \
            "the wake word over the reply was not heard"
        assert await wait_for(lambda: state(run) != "speaking", 0.5)
        return {"flushes": run.daemon.player.stats.flushes}

    _, run, out = run_in_room(tmp_path, room, '[conversation]\nduplex = "auto"\n', script)
    assert out["flushes"] >= 1
    names = [n for n, _ in run.events]
    assert names.count("WakeDetected") == 2 and "FlushPlayback" in names


def test_without_the_canceller_the_same_room_makes_it_interrupt_itself(
        tmp_path: Path) -> None:
    room = Room(delay_s=0.03, gain=1.0)

    async def script(run: Any, server: ReferenceServer) -> dict[str, float]:
        return await converse(run, room, server)

    server, run, _ = run_in_room(
        tmp_path, room, '[conversation]\nduplex = "full"\n[audio.echo]\nenabled = false\n',
        script)
    heard_itself = server.stats.interruptions > 0 or run.final_status["wake"]["detections"] > 1
    assert heard_itself, "the room's echo did not reach the microphone"
