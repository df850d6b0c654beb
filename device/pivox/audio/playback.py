"""The playback thread: a small jitter buffer in front of the speaker.

`play` only queues 24 kHz audio as labelled segments; the thread converts it once to the
device rate (soxr) and volume, so the event loop never resamples. A reply starts once
`jitter_ms` is buffered (or the turn is complete); `flush` drops everything within a period.
After the last sound the device is fed silence for REST_AFTER_S (the tail and its echo),
then paused where it stands: no writes, resampling or echo work while nothing plays, and
no pop (it holds the silent sample it stopped on, never closes). `play` resumes it; a
device that cannot pause is fed silence throughout. The thread beats a heartbeat every
period, every REST_BEAT_S at rest and every device retry, so the supervisor can tell a
missing speaker from a wedged write; an unexpected exception goes to `on_died`.
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
from pivox.audio.convert import Segment, ToDevice
from pivox.audio.echo import EchoReference
from pivox.audio.ownvoice import SILENT_S, OwnVoice
from pivox.audio.worker import DeviceThread
from pivox.core.formats import MIC_RATE as ECHO_RATE
from pivox.core.formats import MODEL_RATE as REPLY_RATE

log = logging.getLogger("pivox.playback")
FADE_S = 0.003  # ramps at the edges of a gap
REST_AFTER_S = 1.0  # silence written after the last sound before the device is paused
REST_BEAT_S = 0.25  # heartbeat while paused: half the supervisor's shortest quiet limit
AWAKE_STATES = ("listening", "thinking", "speaking")  # a conversation: never rest in one
# Silence fed to the echo reference (and the own-voice twin) after the last sound before
# more of it is skipped: the twin's decision window, far past the resampler's tail.
QUIET_REF_S = SILENT_S


@dataclass
class PlaybackStats:
    first_reply_write: float | None = None  # monotonic time the first reply sample was written
    reply_samples: int = 0
    prompts_played: list[str] = field(default_factory=list)
    underruns: int = 0  # a reply resumed after running dry, or the device ran dry in sound
    flushes: int = 0
    level: float = 0.0  # RMS of the last written period, 0..1 (for the LEDs)
    last_drop_at: float | None = None  # monotonic time the device buffer was last dropped
    periods_written: int = 0
    rests: int = 0  # times the device was paused for lack of anything to play
    resting: bool = False


@dataclass(frozen=True)
class PlaybackSnapshot:
    device: str
    volume: float
    level: float
    underruns: int
    flushes: int
    buffered_ms: float
    heartbeat: float  # monotonic time of the last period written, rest beat or device retry
    failed: bool  # the speaker is missing; the thread retries it
    reply_samples: int
    resting: bool  # paused: nothing to play


class Player(DeviceThread):
    def __init__(self, open_sink: Callable[[], AudioSink], rate: int = 48000,
                 volume: float = 0.8, jitter_ms: int = 60,
                 on_drained: Callable[[], None] | None = None,
                 on_failed: Callable[[str], None] | None = None,
                 on_recovered: Callable[[], None] | None = None,
                 echo_ref: EchoReference | None = None, retry_s: float = 2.0,
                 own_voice: OwnVoice | None = None,
                 on_died: Callable[[BaseException], None] | None = None,
                 fault: Callable[[], None] | None = None,
                 rest_after_s: float = REST_AFTER_S) -> None:
        """`rate` is the device's (what `open_sink` gives). The device is opened in the
        thread; missing or vanished, `on_failed` is called once and it is reopened every
        `retry_s` until `on_recovered`."""
        super().__init__("pivox-playback", retry_s, on_died, fault)
        self._open_sink = open_sink
        self.rate = rate
        self._on_recovered = on_recovered or (lambda: None)
        self.volume = volume
        self._jitter_ms = jitter_ms
        self._on_drained = on_drained or (lambda: None)
        self._on_failed = on_failed or (lambda reason: None)
        self._rest_after_s = rest_after_s
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._finishing = False
        self._flush = False
        self._gen = 0  # bumped by _clear
        self._converting = 0  # raw bytes taken out of their segments, not yet put back
        self._dry = False  # the reply ran out mid-turn; more of it is an underrun
        self._awake = False  # in a conversation (see observe)
        self._poke = threading.Event()  # something to play: wakes a resting device
        self._to_device = ToDevice(rate)  # thread only
        self._conv_gen = 0
        self._echo_ref = echo_ref
        self._own_voice = own_voice
        self._ref_resampler: soxr.ResampleStream | None = None
        self._ref_lag = 0.0  # seconds of speaker audio inside the reference's resampler
        self._ref_quiet_s = 0.0  # silence fed to the reference since the last sound
        self.stats = PlaybackStats()
        self.sink: AudioSink | None = None

    def start(self) -> None:
        if self._own_voice is not None:
            self._own_voice.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(timeout=3)
        if self._own_voice is not None:
            self._own_voice.stop()

    def play(self, pcm24k: bytes, label: str = "reply") -> None:
        """Queue 24 kHz s16 audio; converted in the playback thread, not here."""
        with self._lock:
            if self._segments and self._segments[-1].label == label == "reply":
                self._segments[-1].raw.append(pcm24k)
            else:
                self._segments.append(Segment(label, bytearray(), [pcm24k]))
            if label == "reply":
                self._finishing = False
        self._poke.set()

    def observe(self, kind: str, data: dict[str, object]) -> None:
        """A daemon observer: the device runs through a whole conversation, from the wake
        word on, so its clock has settled (and the echo reference with it) by the reply."""
        if kind == "state":
            self._awake = data.get("state") in AWAKE_STATES
            self._poke.set()

    def finish(self) -> None:
        """The reply is complete: play out what is queued, then call on_drained."""
        with self._lock:
            self._finishing = True
        self._poke.set()

    def flush(self) -> None:
        """Barge-in: silence now. Queued audio is discarded, the device buffer dropped."""
        with self._lock:
            self._clear()
            self._flush = True
            self.stats.flushes += 1
        self._poke.set()

    def snapshot(self) -> PlaybackSnapshot:
        sink = self.sink
        return PlaybackSnapshot(
            device=sink.name if sink is not None else "", volume=self.volume,
            level=self.stats.level, underruns=self.stats.underruns,
            flushes=self.stats.flushes, buffered_ms=self.buffered_ms(),
            heartbeat=self.heartbeat, failed=self._failed,
            reply_samples=self.stats.reply_samples, resting=self.stats.resting)

    def buffered_ms(self) -> float:
        with self._lock:
            n = sum(len(s.pcm) for s in self._segments)
            raw = sum(len(r) for s in self._segments for r in s.raw) + self._converting
        return (n / 2 / self.rate + raw / 2 / REPLY_RATE) * 1000

    # -- playback thread
    def _convert_pending(self) -> None:
        """Convert what `play` queued, outside the lock; a flush meanwhile discards it."""
        with self._lock:
            gen = self._gen
            work = [(s, s.raw) for s in self._segments if s.raw]
            for s, _ in work:
                s.raw = []
            # still queued while it converts: an empty reading would say it has all played
            self._converting = sum(len(r) for _, raws in work for r in raws)
        if gen != self._conv_gen:  # flushed: the reply's resampler state is stale
            self._to_device.reset()
            self._conv_gen = gen
        if not work:
            return
        conv = self._to_device.convert
        done = [(s, b"".join(conv(r, self.volume, s.label == "reply") for r in raws))
                for s, raws in work]
        with self._lock:
            self._converting = 0
            if gen == self._gen:
                for s, pcm in done:
                    s.pcm += pcm

    def _next_period(self, nbytes: int) -> bytes | None:
        """Up to one period of queued audio, or None to play silence."""
        self._convert_pending()
        with self._lock:
            if not self._segments:
                return None
            seg = self._segments[0]
            if not seg.started and seg.label == "reply" and not self._finishing:
                ready_ms = len(seg.pcm) / 2 / self.rate * 1000
                if ready_ms < self._jitter_ms:
                    return None  # let the jitter buffer fill before the first sample
            if not seg.pcm:
                if not seg.raw:  # converted to nothing (a few samples into soxr)
                    self._segments.popleft()
                return None
            seg.started = True
            chunk = bytes(seg.pcm[:nbytes])
            del seg.pcm[:nbytes]
            if not seg.pcm and not seg.raw:
                self._segments.popleft()
                if seg.label.startswith("prompt:"):
                    self.stats.prompts_played.append(seg.label.removeprefix("prompt:"))
            if seg.label == "reply":
                if self._dry:  # more of a reply that had run dry: that gap was heard
                    self._dry = False
                    self.stats.underruns += 1
                if self.stats.first_reply_write is None:
                    self.stats.first_reply_write = time.monotonic()
                self.stats.reply_samples += len(chunk) // 2
            return chunk

    def _feed_reference(self, chunk: bytes, sink: AudioSink, quiet: bool) -> None:
        """Tell the echo canceller exactly what was just sent, and when it will be heard.

        One resampler stream runs through silence and sound alike while the device runs
        (restarting it mid-reply would tear the timeline by its filter's delay); what it
        holds back is accounted in `_ref_lag`. A rest starts a new one (the old held only
        silence), and the reference re-anchors on the jump in time. Once QUIET_REF_S of
        silence has gone through (`quiet`: nothing was queued), more of it is not fed: the
        resampler holds only silence, which it keeps until sound comes, so skipping it
        changes nothing but the cost of a conversation's quiet parts."""
        assert self._echo_ref is not None
        dur = len(chunk) / 2 / sink.rate
        if not quiet:
            self._ref_quiet_s = 0.0
        elif self._ref_quiet_s >= QUIET_REF_S:
            return  # read back as the zeros it is; no resampling, avail() or twin for it
        else:
            self._ref_quiet_s += dur
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
            self._own_voice.listen(x, heard_at)

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
                    self._dry = True  # an underrun if more of this reply comes
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
                self.stats.resting = False
                sink.close()

    def _discard(self) -> None:
        """With no speaker, queued audio would only come out late: drop it."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        """Under the lock: nothing queued, and conversions begun before now are stale."""
        self._segments.clear()
        self._finishing = self._dry = False
        self._converting = 0
        self._gen += 1

    def _idle(self) -> bool:
        with self._lock:
            return not (self._segments or self._flush or self._finishing or self._awake)

    def _rest(self, sink: AudioSink) -> bool:
        """Pause the device until there is something to play; False if it cannot pause."""
        pause = getattr(sink, "pause", None)
        if pause is None or not pause(True):
            return False
        self.stats.rests += 1
        self.stats.resting = True
        self.stats.level = 0.0
        self._ref_resampler = None  # it held silence only; the next one starts afresh
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            self._poke.clear()
            if not self._idle():
                break
            self._poke.wait(REST_BEAT_S)
        self.stats.resting = False
        if not pause(False):
            raise DeviceError(f"speaker {sink.name!r}: could not resume after a pause")
        return True

    def _serve(self, sink: AudioSink) -> None:
        period_bytes = sink.period_frames * 2
        period_s = sink.period_frames / sink.rate
        silence = bytes(period_bytes)
        fade = max(1, int(sink.rate * FADE_S))
        sounding = False  # the last period ended in audio, not silence
        quiet_s = 0.0  # silence written since the last sound
        can_rest = True
        xruns = getattr(sink, "underruns", 0)
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
                        self._finishing = self._dry = False
                if drained:
                    self._on_drained()
                if can_rest and quiet_s >= self._rest_after_s and self._idle():
                    can_rest = self._rest(sink)
                    quiet_s = 0.0
                    continue
                chunk = silence
                self.stats.level = 0.0
                sounding = False
                quiet_s += period_s
            else:
                quiet_s = 0.0
                x = np.frombuffer(chunk, dtype="<i2").astype(np.float32)
                self.stats.level = float(np.sqrt(np.mean(x * x)) / 32768.0) if len(x) else 0.0
                x = self._smooth_edges(x, fade, sounding, len(chunk) < period_bytes)
                chunk = x.astype("<i2").tobytes()
                sounding = len(chunk) == period_bytes
                if len(chunk) < period_bytes:
                    chunk += bytes(period_bytes - len(chunk))
            sink.write(chunk)
            self.stats.periods_written += 1
            now_xruns = getattr(sink, "underruns", 0)
            if now_xruns != xruns and chunk is not silence:  # the device ran dry in sound
                self.stats.underruns += now_xruns - xruns
            xruns = now_xruns
            if self._echo_ref is not None:
                self._feed_reference(chunk, sink, chunk is silence)
