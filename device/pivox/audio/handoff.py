"""Hand-offs from the audio threads to the asyncio loop: lossy for audio, lossless for events.

Audio frames go through `Handoff`: the producer never waits; when the loop falls behind,
the oldest frame is dropped and counted (status shows the count), because a late frame is
worth less than a current one. The loop is woken once per `batch` frames, not per frame:
each wake-up of a small board's one busy core costs more than the frames it carries, and
the model hears 60 ms chunks as well as 20 ms ones. Control events (a wake word, the end
of speech, a device that failed) go through `EventChannel`, which never drops and never
waits for a batch: they are few, and a machine that misses one is stuck in the wrong state.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, maxlen: int, batch: int = 1) -> None:
        self._loop = loop
        self._items: deque[tuple[float, T]] = deque()
        self._maxlen = maxlen
        self._batch = max(1, batch)
        self._woken = False  # a wake-up is on its way to the loop
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: T) -> None:
        """Any thread. Never blocks."""
        with self._lock:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append((time.monotonic(), item))
            wake = len(self._items) >= self._batch and not self._woken
            self._woken = self._woken or wake
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._ready.set)

    def discard(self) -> None:
        """Any thread: forget what waits (stale frames of a stream that ended)."""
        with self._lock:
            self._items.clear()

    async def take(self) -> list[T]:
        """Loop only: everything waiting, once a batch has gathered."""
        while True:
            with self._lock:
                if len(self._items) >= self._batch:
                    items = [item for _, item in self._items]
                    self._items.clear()
                    self._woken = False
                    return items
                self._ready.clear()
                self._woken = False
            await self._ready.wait()

    def oldest_age(self, now: float) -> float:
        """How long the oldest waiting item has waited, once a batch waits (else 0): a
        consumer that has stopped consuming shows here, whatever it is waiting on. A tail
        shorter than a batch (a stream stopped between two frames of one read) wakes no
        one and is no consumer's backlog."""
        with self._lock:
            return now - self._items[0][0] if len(self._items) >= self._batch else 0.0

    def __len__(self) -> int:
        return len(self._items)


class EventChannel(Generic[T]):
    """Events from any thread, delivered on the loop in order, none ever dropped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[T], None]) -> None:
        self._loop = loop
        self._deliver = deliver
        self.posted = 0

    def put(self, event: T) -> None:
        """Any thread. Never blocks, never drops while the loop runs."""
        self.posted += 1
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(self._deliver, event)
