"""The microphone's way to the model: a send buffer bounded in milliseconds of audio.

The capture thread and the loop never wait on the network: frames queue here (the oldest
dropped and counted when the link is slower than the microphone), and one sender per
connection drains them. A frame leaves the buffer only once it was written, so a send
that fails on a closing connection keeps it for the next one (a goAway handover loses
nothing). Activity marks (local turn detection) travel in order with the audio. Frames
waiting in a row leave as one message of up to UPLINK_MS.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import websockets

from pivox.core.formats import frames_per_message
from pivox.link import codec as lc

Item = tuple[bytes | str, float | None]  # pcm or "start"/"end", and when it was captured


class Uplink:
    def __init__(self, max_frames: int, frame_ms: int) -> None:
        self._items: deque[Item] = deque()
        self._max = max(1, max_frames)
        self._frame_ms = frame_ms
        self._gen = 0  # bumped whenever the buffer is cleared
        self._ready = asyncio.Event()
        self.dropped_ms = 0
        # Microphone-to-wire latency of recent frames (capture of the last sample to the
        # socket write), in ms: for status and the latency benchmark.
        self.mic_to_wire_ms: deque[float] = deque(maxlen=3000)

    def audio(self, pcm: bytes, captured_at: float | None) -> None:
        if len(self._items) >= self._max:
            self._items.popleft()
            self.dropped_ms += self._frame_ms
        self._items.append((pcm, captured_at))
        self._ready.set()

    def activity(self, start: bool) -> None:
        self._items.append(("start" if start else "end", None))
        self._ready.set()

    def clear(self) -> None:
        self._items.clear()
        self._gen += 1

    def wake(self) -> None:
        """Wake the sender (to see that it must stop)."""
        self._ready.set()

    async def drain(self, codec: lc.LiveCodec, flush: Callable[[], Awaitable[None]],
                    stopped: Callable[[], bool]) -> None:
        """One connection's sender: until `stopped()` or the connection closes."""
        while not stopped():
            if not self._items:
                self._ready.clear()
                await self._ready.wait()
                continue
            gen = self._gen
            batch = self._next_message()
            first = batch[0][0]
            if isinstance(first, str):
                codec.send_activity(first == "start")
            else:
                codec.send_audio(b"".join(p for p, _ in batch if isinstance(p, bytes)))
            try:
                await flush()
            except (websockets.ConnectionClosed, asyncio.CancelledError) as exc:
                if gen == self._gen:  # not written: it goes on the next connection
                    self._items.extendleft(reversed(batch))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            now = time.monotonic()
            for _, captured_at in batch:
                if captured_at is not None:
                    self.mic_to_wire_ms.append((now - captured_at) * 1000)

    def _next_message(self) -> list[Item]:
        """An activity mark alone, or the audio frames that wait in a row, up to UPLINK_MS:
        one message, not one per frame."""
        batch = [self._items.popleft()]
        if isinstance(batch[0][0], str):
            return batch
        most = frames_per_message(self._frame_ms)
        while self._items and len(batch) < most and not isinstance(self._items[0][0], str):
            batch.append(self._items.popleft())
        return batch
