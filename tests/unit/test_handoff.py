"""The capture thread's hand-off to the loop: the loop is woken once a message's worth of
frames waits, not per frame; a stream's stale tail can be thrown away; a loop that falls
behind loses the oldest frames, counted."""

from __future__ import annotations

import asyncio
import threading
import time

from pivox.audio.handoff import Handoff


def from_thread(h: Handoff[int], items: list[int]) -> None:
    t = threading.Thread(target=lambda: [h.put(i) for i in items])
    t.start()
    t.join()


def test_the_loop_is_woken_once_a_batch_waits() -> None:
    async def main() -> tuple[bool, list[int]]:
        h: Handoff[int] = Handoff(asyncio.get_running_loop(), maxlen=10, batch=3)
        taker = asyncio.create_task(h.take())
        from_thread(h, [1, 2])
        await asyncio.sleep(0.1)
        early = taker.done()  # two frames do not make a batch
        from_thread(h, [3])
        return early, await asyncio.wait_for(taker, 2)

    early, got = asyncio.run(main())
    assert not early, "the loop was woken before a batch had gathered"
    assert got == [1, 2, 3]


def test_a_discarded_tail_never_reaches_the_next_stream() -> None:
    async def main() -> list[int]:
        h: Handoff[int] = Handoff(asyncio.get_running_loop(), maxlen=10, batch=3)
        from_thread(h, [1, 2])  # the last stream's tail, too short to wake the loop
        h.discard()
        from_thread(h, [3, 4, 5])
        return await asyncio.wait_for(h.take(), 2)

    assert asyncio.run(main()) == [3, 4, 5]


def test_a_loop_that_falls_behind_loses_the_oldest_frames_counted() -> None:
    async def main() -> tuple[list[int], int]:
        h: Handoff[int] = Handoff(asyncio.get_running_loop(), maxlen=4, batch=1)
        from_thread(h, list(range(10)))
        return await asyncio.wait_for(h.take(), 2), h.dropped

    assert asyncio.run(main()) == ([6, 7, 8, 9], 6)


def test_a_short_tail_is_no_backlog_but_an_untaken_batch_is() -> None:
    """The pump's health check reads this: a stream that stopped between two frames of a
    read leaves a tail that wakes no one, and an idle speaker must not look stalled."""
    async def main() -> tuple[float, float]:
        h: Handoff[int] = Handoff(asyncio.get_running_loop(), maxlen=10, batch=3)
        from_thread(h, [1, 2])
        tail = h.oldest_age(time.monotonic() + 60)
        from_thread(h, [3])
        return tail, h.oldest_age(time.monotonic() + 60)

    tail, batch = asyncio.run(main())
    assert tail == 0.0
    assert batch >= 60
