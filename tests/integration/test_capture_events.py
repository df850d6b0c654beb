"""Control events from the capture thread survive a stalled loop; only audio is dropped.

A microphone that delivers 3 s of frames and then vanishes, while the loop is blocked for
2.5 s: the hand-off (100 frames, 2 s) overflows and drops the oldest frames, counted, but
AudioReady and DeviceFailed, which the machine must hear, arrive in order all the same.
"""

from __future__ import annotations

import asyncio
import time

from pivox.audio.base import DeviceError
from pivox.audio.capture import Capture, Captured
from pivox.audio.handoff import EventChannel, Handoff
from pivox.core import events as ev
from pivox.wake import make_engine

FRAME = 640


class BurstMic:
    """A device that hands out `frames` silent frames at once, then is unplugged."""

    name = "burst"
    overruns = 0
    backlog_s = 0.0

    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self) -> bytes:
        if self.left == 0:
            raise DeviceError("burst: unplugged")
        self.left -= 1
        return bytes(FRAME)

    def close(self) -> None:
        pass


def test_events_survive_a_stalled_loop_while_frames_are_dropped() -> None:
    async def main() -> tuple[list[ev.Event], int, int]:
        loop = asyncio.get_running_loop()
        got: list[ev.Event] = []
        frames: Handoff[Captured] = Handoff(loop, maxlen=100)
        events: EventChannel[ev.Event] = EventChannel(loop, got.append)
        opened = []

        def source() -> BurstMic:
            if opened:
                raise DeviceError("burst: still unplugged")
            opened.append(1)
            return BurstMic(150)

        cap = Capture(source, make_engine(), frames, events.put, retry_s=10.0)
        cap.start_streaming()  # a conversation: every frame goes to the loop
        cap.start()
        time.sleep(2.5)  # the loop is stalled: nothing is delivered meanwhile
        await asyncio.sleep(0.1)
        n = len(frames)
        cap.stop()
        return got, n, frames.dropped

    got, queued, dropped = asyncio.run(main())
    assert got == [ev.AudioReady(), ev.DeviceFailed("microphone", "burst: unplugged")]
    assert queued == 100 and dropped == 50
