"""The playback thread: a small jitter buffer in front of the speaker.

Reply audio (24 kHz) and prompts are resampled once with soxr to the device rate and
queued as labelled segments. The thread keeps the device fed with silence between replies
(no start/stop pops on I2S amplifiers), starts a reply once `jitter_ms` is buffered (or the
turn is known complete), and on `flush` drops everything within one period. It beats a
heartbeat on every period written and every retry of a missing device, so the supervisor
can tell a missing speaker (still beating) from a wedged write (silent); an unexpected
exception goes to `on_died` instead of vanishing with the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import soxr

from pivox.audio.base import AudioSink, DeviceError
from pivox.audio.echo import EchoReference
from pivox.audio.ownvoice import OwnVoice
from pivox.core.formats import MIC_RATE as ECHO_RATE
from pivox.core.formats import MODEL_RATE as REPLY_RATE

log = logging.getLogger("pivox.playback")
FADE_S = 0.003  # ramps at the edges of a gap


@dataclass
class Segment:
    label: str  # "reply" or "prompt:NAME"
    pcm: bytearray
    started: bool = False


@dataclass
class PlaybackStats:
    first_reply_write: float | None = None  # monotonic time the first reply sample was written
    reply_samples: int = 0
    prompts_played: list[str] = field(default_factory=list)
    underruns: int = 0
    flushes: int = 0
    level: float = 0.0  # RMS of the last written period, 0..1 (for the LEDs)
    last_drop_at: float | None = None  # monotonic time the device buffer was last dropped


@dataclass(frozen=True)
class PlaybackSnapshot:
    device: str
    volume: float
    level: float
    underruns: int
    flushes: int
    buffered_ms: float
    heartbeat: float  # monotonic time of the last period written or device retry
    failed: bool  # the speaker is missing; the thread retries it
    reply_samples: int


class Player:
    def __init__(self, open_sink: Callable[[], AudioSink], rate: int = 48000,
                 volume: float = 0.8, jitter_ms: int = 60,
                 on_drained: Callable[[], None] | None = None,
                 on_failed: Callable[[str], None] | None = None,
                 on_recovered: Callable[[], None] | None = None,
                 echo_ref: EchoReference | None = None, retry_s: float = 2.0,
                 own_voice: OwnVoice | None = None,
                 on_died: Callable[[BaseException], None] | None = None,
                 fault: Callable[[], None] | None = None) -> None:
        """`rate` is the device's rate (what `open_sink` will give). The device is opened
        in the playback thread; when it is missing or vanishes, `on_failed` is called once
        and it is reopened every `retry_s` until `on_recovered`."""
        self._open_sink = open_sink
        self.rate = rate
        self._retry_s = retry_s
        self._on_recovered = on_recovered or (lambda: None)
        self.volume = volume
        self._jitter_ms = jitter_ms
        self._on_drained = on_drained or (lambda: None)
        self._on_failed = on_failed or (lambda reason: None)
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._finishing = False
        self._flush = False
        self._stop = threading.Event()
        self._resampler: soxr.ResampleStream | None = None
        self._echo_ref = echo_ref
        self._own_voice = own_voice
        self._ref_resampler: soxr.ResampleStream | None = None
        self._ref_lag = 0.0  # seconds of speaker audio inside the reference's resampler
        self.stats = PlaybackStats()
        self.sink: AudioSink | None = None
        self._on_died = on_died
        self._fault = fault  # a debug hook that may raise or block here (tests only)
        self.heartbeat = time.monotonic()
        self._failed = False
        self._thread = threading.Thread(target=self._guarded, name="pivox-playback",
                                        daemon=True)

    # -- loop side
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def play(self, pcm24k: bytes, label: str = "reply") -> None:
        pcm = self._convert(pcm24k, label == "reply")
        with self._lock:
            if self._segments and self._segments[-1].label == label == "reply":
                self._segments[-1].pcm += pcm
            else:
                self._segments.append(Segment(label, bytearray(pcm)))
            if label == "reply":
                self._finishing = False

    def finish(self) -> None:
        """The reply is complete: play out what is queued, then call on_drained."""
        with self._lock:
            self._finishing = True

    def flush(self) -> None:
        """Barge-in: silence now. Queued audio is discarded, the device buffer dropped."""
        with self._lock:
            self._segments.clear()
            self._finishing = False
            self._flush = True
            self._resampler = None
            self.stats.flushes += 1

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> PlaybackSnapshot:
        sink = self.sink
        return PlaybackSnapshot(
            device=sink.name if sink is not None else "", volume=self.volume,
            level=self.stats.level, underruns=self.stats.underruns,
            flushes=self.stats.flushes, buffered_ms=self.buffered_ms(),
            heartbeat=self.heartbeat, failed=self._failed,
            reply_samples=self.stats.reply_samples)

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # the supervisor decides; the thread only reports
            if self._on_died is None:
                raise
            self._on_died(exc)

    def _retry_wait(self) -> None:
        """Sleep until the next reopen, beating so a missing speaker is not a wedge."""
        end = time.monotonic() + self._retry_s
        while not self._stop.is_set() and time.monotonic() < end:
            self.heartbeat = time.monotonic()
            self._stop.wait(min(0.5, self._retry_s))

    def buffered_ms(self) -> float:
        with self._lock:
            n = sum(len(s.pcm) for s in self._segments)
        return n / 2 / self.rate * 1000

    # -- internals
    def _convert(self, pcm24k: bytes, stream: bool) -> bytes:
        x = np.frombuffer(pcm24k, dtype="<i2").astype(np.float32) / 32768.0
        if self.rate != REPLY_RATE:
            if stream:  # reply chunks: keep filter state across chunks (no seams)
                with self._lock:
                    if self._resampler is None:
                        self._resampler = soxr.ResampleStream(REPLY_RATE, self.rate, 1,
                                                              dtype="float32")
                    x = self._resampler.resample_chunk(x)
            else:
                x = soxr.resample(x, REPLY_RATE, self.rate)
        x = x * self.volume
        return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()

    def _next_period(self, nbytes: int) -> bytes | None:
        """Up to one period of queued audio, or None to play silence."""
        with self._lock:
            if not self._segments:
                return None
            seg = self._segments[0]
            if not seg.started and seg.label == "reply" and not self._finishing:
                ready_ms = len(seg.pcm) / 2 / self.rate * 1000
                if ready_ms < self._jitter_ms:
                    return None  # let the jitter buffer fill before the first sample
            seg.started = True
            chunk = bytes(seg.pcm[:nbytes])
            del seg.pcm[:nbytes]
            if not seg.pcm:
                self._segments.popleft()
                if seg.label.startswith("prompt:"):
                    self.stats.prompts_played.append(seg.label.removeprefix("prompt:"))
            if seg.label == "reply":
                if self.stats.first_reply_write is None:
                    self.stats.first_reply_write = time.monotonic()
                self.stats.reply_samples += len(chunk) // 2
            return chunk

    def _feed_reference(self, chunk: bytes, sink: AudioSink) -> None:
        """Tell the echo canceller exactly what was just sent, and when it will be heard.

        One resampler stream runs through silence and sound alike: restarting it would lose
        the audio inside its filter and tear the reference's timeline by milliseconds each
        time the reply paused. What it holds back (its delay) is accounted in `_ref_lag`,
        so each output sample carries the time its input sample is heard."""
        assert self._echo_ref is not None
        dur = len(chunk) / 2 / sink.rate
        heard_at = time.monotonic() + sink.delay_s() - dur
        x = np.frombuffer(chunk, dtype="<i2")
        if sink.rate != ECHO_RATE:
            if self._ref_resampler is None:
                # float, not int16: soxr dithers int16 output, and a reference of dither
                # would keep the canceller adapting (and "speaking") through silence
                self._ref_resampler = soxr.ResampleStream(sink.rate, ECHO_RATE, 1,
                                                          dtype="float32")
                self._ref_lag = 0.0
            y = self._ref_resampler.resample_chunk(x.astype(np.float32))
            heard_at -= self._ref_lag
            self._ref_lag += dur - len(y) / ECHO_RATE
            x = np.clip(np.round(y), -32768, 32767).astype(np.int16)
        self._echo_ref.add(x, heard_at)
        if self._own_voice is not None:
            self._own_voice.hear(x, heard_at)

    def _smooth_edges(self, x: np.ndarray, fade: int, sounding: bool, ends: bool
                      ) -> np.ndarray:
        """Ramp audio in after silence and out before it, so a gap in the stream (a slow
        network emptied the jitter buffer) is a short hush, never a click."""
        n = min(fade, len(x))
        if not sounding and n:
            x[:n] *= np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        if ends and n:
            x[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
            with self._lock:
                if not self._finishing and not self._segments:
                    self.stats.underruns += 1  # ran dry mid-reply
        return x

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                sink = self._open_sink()
            except DeviceError as exc:
                if not self._failed:
                    log.error("speaker unavailable: %s", exc)
                    self._on_failed(str(exc))
                    self._failed = True
                self._discard()
                self._retry_wait()
                continue
            self.sink = sink
            if self._failed:
                log.info("speaker %s is back", sink.name)
                self._on_recovered()
                self._failed = False
            try:
                self._serve(sink)
            except DeviceError as exc:
                log.error("speaker failed: %s", exc)
                self._on_failed(str(exc))
                self._failed = True
                self._discard()
                self._retry_wait()
            finally:
                sink.close()

    def _discard(self) -> None:
        """With no speaker, queued audio would only come out late: drop it."""
        with self._lock:
            self._segments.clear()
            self._finishing = False
            self._resampler = None

    def _serve(self, sink: AudioSink) -> None:
        period_bytes = sink.period_frames * 2
        silence = bytes(period_bytes)
        fade = max(1, int(sink.rate * FADE_S))
        sounding = False  # the last period ended in audio, not silence
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            if self._fault is not None:
                self._fault()
            with self._lock:
                flush, self._flush = self._flush, False
            if flush:
                sink.drop()
                self._ref_resampler = None  # what it holds was never played
                self.stats.last_drop_at = time.monotonic()
            chunk = self._next_period(period_bytes)
            if chunk is None:
                with self._lock:
                    drained = self._finishing and not self._segments
                    if drained:
                        self._finishing = False
                if drained:
                    self._on_drained()
                chunk = silence
                self.stats.level = 0.0
                sounding = False
            else:
                x = np.frombuffer(chunk, dtype="<i2").astype(np.float32)
                self.stats.level = float(np.sqrt(np.mean(x * x)) / 32768.0) if len(x) else 0.0
                x = self._smooth_edges(x, fade, sounding, len(chunk) < period_bytes)
                chunk = x.astype("<i2").tobytes()
                sounding = len(chunk) == period_bytes
                if len(chunk) < period_bytes:
                    chunk += bytes(period_bytes - len(chunk))
            sink.write(chunk)
            if self._echo_ref is not None:
                self._feed_reference(chunk, sink)
