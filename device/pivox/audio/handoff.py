"""Bounded hand-off from an audio thread to the asyncio loop.

The producer never waits: when the loop falls behind, the oldest item is dropped and
counted (status shows the count). The consumer awaits items on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, maxlen: int) -> None:
        self._loop = loop
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: T) -> None:
        """Any thread. Never blocks."""
        with self._lock:
            if len(self._items) >= self._maxlen:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            wake = len(self._items) == 1
        if wake:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> T:
        """Loop only."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                self._ready.clear()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)
