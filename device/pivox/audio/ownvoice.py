"""The speaker must not answer to its own voice: a twin of the wake engine listens to
exactly what is being played, so a keyword the microphone hears just after the speaker
said it is recognised as echo, whether or not the canceller has learnt the room yet.

The twin runs on a thread of its own, not the playback thread: `listen` only queues a
period (bounded; the oldest dropped and counted), so a slow engine call can never make
the speaker run dry. Silence past SILENT_S after the last sound is not queued at all:
the engine has decided by then, and hearing nothing costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

import numpy as np

from pivox.core.formats import MIC_RATE
from pivox.core.wakeword import WakeEngine

log = logging.getLogger("pivox.ownvoice")
BEFORE_S = 0.5  # the microphone's engine may decide a little before the twin does
AFTER_S = 1.5  # echo delay, device buffers and the two engines' timing differences
SILENT_S = 1.5  # silence fed after the last sound: the engine's window and its decision
QUEUE_PERIODS = 100  # 2 s of 20 ms periods


class OwnVoice:
    """Fed by the playback thread, asked by the capture thread (a float store is atomic)."""

    def __init__(self, engine: WakeEngine) -> None:
        self._engine = engine
        engine.stop_armed = True  # a stop word in a reply must not stop it either
        self.said_at = -1e9  # monotonic time the speaker finished saying a keyword
        self.said = 0
        self.dropped = 0  # periods the twin fell too far behind to hear
        self._silent_s = SILENT_S  # start quiet: nothing has been played yet
        self._queue: queue.Queue[tuple[np.ndarray, float] | threading.Event | None] = \
            queue.Queue(QUEUE_PERIODS)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pivox-ownvoice",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                self._take_oldest()
        self._thread.join(timeout=2)
        self._thread = None

    def listen(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """Queue what the speaker plays from `heard_at` (16 kHz s16); never blocks."""
        if pcm16k.any():
            self._silent_s = 0.0
        elif self._silent_s >= SILENT_S:
            return
        else:
            self._silent_s += len(pcm16k) / MIC_RATE
        try:
            self._queue.put_nowait((pcm16k, heard_at))
        except queue.Full:
            self._take_oldest()
            self.dropped += 1
            self._queue.put_nowait((pcm16k, heard_at))

    def _take_oldest(self) -> None:
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self.hear(*item)
            except Exception:  # the twin is a nicety: without it, echo may wake us
                log.exception("own-voice engine failed; its keyword may wake the speaker")
                return

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until what was queued so far has been heard; False on timeout."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        return done.wait(timeout)

    def hear(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """What the speaker plays from `heard_at` on, as 16 kHz s16 (the twin's thread)."""
        if len(pcm16k) and self._engine.process(pcm16k.tobytes()):
            self.said_at = heard_at + len(pcm16k) / MIC_RATE
            self.said += 1

    def explains(self, now: float) -> bool:
        """Whether a keyword the microphone heard at `now` is the speaker's own."""
        return -BEFORE_S < now - self.said_at < AFTER_S
