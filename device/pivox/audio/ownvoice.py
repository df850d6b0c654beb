"""The speaker must not answer to its own voice: a twin of the wake engine listens to
exactly what is being played, so a keyword the microphone hears just after the speaker
said it is recognised as echo, whether or not the canceller has learnt the room yet.

The twin hears in batches, off the playback thread: `listen` only appends a period to a
bounded backlog (the oldest dropped and counted), and the twin's thread wakes once per
BATCH_S of sound, not once per period, so a slow engine call can never make the speaker
run dry and the board is not woken fifty times a second for it. A batch can be up to
BATCH_S behind the speaker, so `explains` first hears whatever is still waiting (on the
asking thread, rarely: only when the microphone heard a keyword): the answer never
depends on how far the twin's thread has got. Silence past SILENT_S after the last sound
is not kept at all: the engine has decided by then, and hearing nothing costs nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import numpy as np

from pivox.core.formats import MIC_RATE
from pivox.core.wakeword import WakeEngine
from pivox.hw.threadname import name_os_thread

log = logging.getLogger("pivox.ownvoice")
BEFORE_S = 0.5  # the microphone's engine may decide a little before the twin does
AFTER_S = 1.5  # echo delay, device buffers and the two engines' timing differences
SILENT_S = 1.5  # silence fed after the last sound: the engine's window and its decision
BATCH_S = 0.2  # sound gathered before the twin's thread wakes
BACKLOG_S = 2.0  # at most this much waits; older periods are dropped and counted


class OwnVoice:
    """Fed by the playback thread, asked by the capture thread."""

    def __init__(self, engine: WakeEngine) -> None:
        self._engine = engine
        engine.stop_armed = True  # a stop word in a reply must not stop it either
        self.said_at = -1e9  # monotonic time the speaker finished saying a keyword
        self.said = 0
        self.dropped = 0  # periods the twin fell too far behind to hear
        self._silent_s = SILENT_S  # start quiet: nothing has been played yet
        self._lock = threading.Lock()  # the backlog
        self._hearing = threading.Lock()  # the engine: one hearer at a time, in order
        self._backlog: deque[tuple[np.ndarray, float]] = deque()
        self._backlog_s = 0.0
        self._wake = threading.Event()
        self._stopping = False
        self.failed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pivox-ownvoice",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=2)
        self._thread = None

    def listen(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """Keep what the speaker plays from `heard_at` (16 kHz s16); never blocks long."""
        if pcm16k.any():
            self._silent_s = 0.0
        elif self._silent_s >= SILENT_S:
            return
        else:
            self._silent_s += len(pcm16k) / MIC_RATE
        with self._lock:
            self._backlog.append((pcm16k, heard_at))
            self._backlog_s += len(pcm16k) / MIC_RATE
            while self._backlog_s > BACKLOG_S:
                old, _ = self._backlog.popleft()
                self._backlog_s -= len(old) / MIC_RATE
                self.dropped += 1
            ready = self._backlog_s >= BATCH_S or self._silent_s >= SILENT_S
        if ready:
            self._wake.set()

    def _run(self) -> None:
        name_os_thread()
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            self.catch_up()

    def catch_up(self) -> None:
        """Hear everything played so far, on the calling thread. An engine that fails is
        reported once and then left alone: the twin is a nicety, and without it only the
        echo of a keyword may wake the speaker."""
        if self.failed:
            return
        try:
            self._hear_backlog()
        except Exception:
            log.exception("own-voice engine failed; its keyword may wake the speaker")
            self.failed = True

    def _hear_backlog(self) -> None:
        with self._hearing:
            with self._lock:
                batch = list(self._backlog)
                self._backlog.clear()
                self._backlog_s = 0.0
            for pcm, at in batch:
                self.hear(pcm, at)

    def hear(self, pcm16k: np.ndarray, heard_at: float) -> None:
        """What the speaker plays from `heard_at` on, as 16 kHz s16."""
        if len(pcm16k) and self._engine.process(pcm16k.tobytes()):
            self.said_at = heard_at + len(pcm16k) / MIC_RATE
            self.said += 1

    def explains(self, now: float) -> bool:
        """Whether a keyword the microphone heard at `now` is the speaker's own."""
        self.catch_up()
        return -BEFORE_S < now - self.said_at < AFTER_S
