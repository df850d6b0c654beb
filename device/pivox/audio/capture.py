"""The capture thread: microphone -> privacy gate -> wake engine -> speech detector -> loop.

It never waits on the network: frames go to the loop through a bounded hand-off that drops
the oldest when the loop is behind; events (wake word, speech edges, device failures) go
through a channel that never drops. A device failure is reported once, then the device is
reopened on a slow timer until it comes back, without restarting the daemon. The thread
beats a heartbeat on every frame and every retry, so the supervisor can tell a missing
device (still beating) from a wedged read (silent); an unexpected exception is handed to
`on_died` instead of vanishing with the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pivox.audio.base import AudioSource, DeviceError
from pivox.audio.doubletalk import DoubleTalk
from pivox.audio.echo import REANCHOR_S, DelayEstimator, EchoReference, SpeexEcho
from pivox.audio.handoff import Handoff
from pivox.audio.levels import AcousticContext
from pivox.audio.ownvoice import OwnVoice
from pivox.audio.preroll import HELD_MAX_FRAMES, Cut, keyword_cut
from pivox.audio.vad import SpeechDetector
from pivox.audio.worker import DeviceThread
from pivox.core import events as ev
from pivox.core.formats import MIC_RATE
from pivox.core.wakeword import WakeEngine

log = logging.getLogger("pivox.capture")
# The reference leads its echo by DelayEstimator.target_ms (40 ms) inside a 200 ms filter:
# a lag that wanders less than this either way is the adaptive filter's to follow, and
# moving the reference for it would only make the filter relearn.
ALIGN_SLACK_S = 0.02
CONVERGED_DB = 12.0  # echo reduction (per half second) that makes talking over a reply safe
STALL_S = 0.3  # a read this late means audio was lost or is stale: count it as an overrun
SPEECH_ABOVE_DB = 6.0  # a voice is at least this far above the room's noise floor
WARM_STEPS = 2  # speech-detector steps warmed per frame between streams (ready in 0.8 s)


@dataclass(frozen=True)
class Captured:
    """One microphone frame for the loop. `t` is when the frame completed."""

    t: float
    pcm: bytes


@dataclass(frozen=True)
class CaptureSnapshot:
    device: str
    frames: int
    overruns: int
    muted: bool
    muted_frames: int
    heartbeat: float  # monotonic time of the thread's last frame or device retry
    last_frame_at: float
    failed: bool  # the device is missing; the thread retries it
    wake_count: int
    last_wake: tuple[str, float] | None
    own_voice_ignored: int
    echo_cancelling: bool
    echo_converged: bool
    erle_db: float
    echo_held_frames: int
    talked_over: int
    quiet_room: bool
    room: dict[str, float | int]


class Capture(DeviceThread):
    def __init__(self, open_source: Callable[[], AudioSource], wake: WakeEngine,
                 out: Handoff[Captured], events: Callable[[ev.Event], None],
                 retry_s: float = 2.0,
                 speech: SpeechDetector | None = None, preroll_frames: int = 25,
                 echo: SpeexEcho | None = None, echo_ref: EchoReference | None = None,
                 own_voice: OwnVoice | None = None, hold_residual: bool = True,
                 on_died: Callable[[BaseException], None] | None = None,
                 fault: Callable[[], None] | None = None) -> None:
        self._open_source = open_source
        self._wake = wake
        self._out = out
        self._events = events
        super().__init__("pivox-capture", retry_s, on_died, fault)
        self._speech = speech or SpeechDetector()
        self.muted = False  # set from the loop; read here (a bool store is atomic)
        # While idle, frames stay here in the pre-roll ring and never wake the loop; a
        # conversation takes the ring and then receives every frame (see start_streaming).
        self._lock = threading.Lock()
        self._preroll_frames = max(1, preroll_frames)
        self._preroll: deque[tuple[bytes, float, float]] = deque(
            maxlen=self._preroll_frames + HELD_MAX_FRAMES)
        self._cut: Cut | None = None  # a wake word's end, still to be found in the ring
        self._held = False  # the ring holds only what followed a wake word: keep it
        self._streaming = False
        self.frames = 0
        self.muted_frames = 0
        self.last_frame_at = 0.0
        self.acoustic = AcousticContext()
        self.last_wake: tuple[str, float] | None = None
        self.wake_count = 0
        self._echo, self._echo_ref = echo, echo_ref
        self._own_voice = own_voice
        self.own_voice_ignored = 0
        self._delay = DelayEstimator()
        self._frames_since_estimate = 0
        self._mic_next: float | None = None
        self._prev_mic = np.zeros(echo.latency if echo else 0, dtype=np.float32)
        self._e_in = self._e_out = 0.0
        self._e_frames = 0
        self.has_echo = echo is not None
        self.doubletalk = DoubleTalk()
        self.echo_held = 0  # frames of residual echo the model was sent silence for
        self._user_over_echo = True  # this frame may go to the model
        self.replying = False  # the machine's SetReplying: the speaker plays a reply
        # The machine ignores the wake word while the user has the floor (listening), so
        # the engine, the thread's costliest part, rests then unless a stop word is armed.
        self.wake_rests = False
        self._wake_rested = False
        self._hold_residual = hold_residual  # off: the model hears everything (full duplex)
        self.erle_db = 0.0  # smoothed echo reduction while the speaker plays
        self.echo_converged = False
        self._converged_frames = 0
        self.device = ""
        self.overruns = 0  # reported by the device, plus stalls longer than its buffer
        self._stalls = 0

    def start(self) -> None:
        self._thread.start()

    def start_streaming(self) -> list[bytes]:
        """From now on every frame goes to the loop; returns the pre-roll before it: what
        followed the wake word, so the words right after it are never clipped, the keyword
        itself is not the user's turn, and nothing falls in between. While the keyword's
        end is still being found, returns nothing and the thread hands the pre-roll over."""
        with self._lock:
            self._streaming = True
            self._out.discard()  # the last stream's tail, too short to have woken the loop
            if self._cut is not None:
                return []
            frames = [pcm for pcm, _, _ in self._preroll]
            self._preroll.clear()
            self._held = False
        return frames

    def stop_streaming(self) -> None:
        with self._lock:
            self._streaming = False

    def set_muted(self, on: bool) -> None:
        with self._lock:
            self.muted = on
            self._preroll.clear()
            self._cut, self._held = None, False
            self._streaming = self._streaming and not on

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    @property
    def may_talk_over(self) -> bool:
        """The canceller has converged, or the room gives no echo back: the microphone may
        stream to the model while the speaker talks."""
        return self.echo_converged or self.doubletalk.quiet_room

    def snapshot(self) -> CaptureSnapshot:
        return CaptureSnapshot(
            device=self.device, frames=self.frames, overruns=self.overruns, muted=self.muted,
            muted_frames=self.muted_frames, heartbeat=self.heartbeat,
            last_frame_at=self.last_frame_at, failed=self._failed, wake_count=self.wake_count,
            last_wake=self.last_wake, own_voice_ignored=self.own_voice_ignored,
            echo_cancelling=self.has_echo, echo_converged=self.echo_converged,
            erle_db=float(self.erle_db), echo_held_frames=self.echo_held,
            talked_over=self.doubletalk.opened, quiet_room=self.doubletalk.quiet_room,
            room=dict(self.acoustic.snapshot()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            try:
                source = self._open_source()
            except DeviceError as exc:
                if not self._failed:
                    self._events(ev.DeviceFailed("microphone", str(exc)))
                    self._failed = True
                self._retry_wait()
                continue
            self.device = source.name
            self._failed = False
            self._events(ev.AudioReady())
            try:
                self._stream(source)
            except DeviceError as exc:
                self._events(ev.DeviceFailed("microphone", str(exc)))
                self._failed = True
                self._retry_wait()
            finally:
                source.close()

    def cancel_echo(self, pcm: bytes, now: float) -> bytes:
        """Cancel the speaker's echo in a frame that ended at `now`, and track whether the
        canceller has converged: its echo reduction must stay above CONVERGED_DB for a
        second of playback. Also decides (DoubleTalk) whether the frame may go to the model."""
        return self._echo_step(pcm, np.frombuffer(pcm, dtype=np.int16).astype(np.float32),
                               now)[0]

    def _echo_step(self, pcm: bytes, xf: np.ndarray, now: float) -> tuple[bytes, np.ndarray]:
        """cancel_echo on a frame already in float (`xf`). Only while the speaker's sound
        may be in the room; after it the double-talk gate rests, so the next reply's first
        frames are judged afresh, not let through on the hang of a user who spoke as the
        last one ended (its onset, before the canceller catches up, sounds like speech)."""
        if self._echo is None or self._echo_ref is None:
            return pcm, xf
        if self._echo_ref.active(now):
            return self._cancel(pcm, xf, now)
        self.doubletalk.rest()
        return pcm, xf

    def _cancel(self, pcm: bytes, xf: np.ndarray, now: float) -> tuple[bytes, np.ndarray]:
        """Returns the canceller's output both ways."""
        assert self._echo is not None and self._echo_ref is not None
        n = len(pcm) // 2
        # Frames arrive in bursts; their audio is contiguous. Lay them end to end on the
        # clock, re-anchoring only on a real jump, as the playback side does.
        start = now - n / MIC_RATE
        if self._mic_next is not None and abs(start - self._mic_next) < REANCHOR_S:
            start = self._mic_next + 0.01 * (start - self._mic_next)
        self._mic_next = start + n / MIC_RATE
        ref = self._echo_ref.read(start, n)
        rf = np.frombuffer(ref, dtype=np.int16).astype(np.float32)
        self._align(xf, rf)
        out = self._echo.process(pcm, ref)
        # Echo reduction over half-second windows of playback; the canceller's output lags
        # its input by its latency, so the input is lagged the same before comparing.
        lag = self._echo.latency
        lagged = np.concatenate((self._prev_mic, xf))[-lag - n : -lag]
        y = np.frombuffer(out, dtype=np.int16).astype(np.float32)
        self._prev_mic = xf
        ref_e = float(np.dot(rf, rf)) / max(1, n)
        self._user_over_echo = self.doubletalk.update(ref_e, float(np.dot(xf, xf)) / max(1, n),
                                                     self._echo.linear_energy)
        if ref_e > 0:  # the speaker played something in this frame
            self._e_in += float(np.dot(lagged, lagged))
            self._e_out += float(np.dot(y, y))
            self._e_frames += 1
            if self._e_frames >= 25:
                self.erle_db = 10 * np.log10((self._e_in + 1.0) / (self._e_out + 1.0))
                self._e_in = self._e_out = 0.0
                self._e_frames = 0
                self._converged_frames = self._converged_frames + 1 \
                    if self.erle_db >= CONVERGED_DB else 0
                if self._converged_frames >= 2 and not self.echo_converged:
                    self.echo_converged = True
                    log.info("echo canceller converged (%.0f dB)", self.erle_db)
        return out, y

    def _align(self, mic: np.ndarray, ref: np.ndarray) -> None:
        """Every half second of playback, check where the echo really is. Wander within
        ALIGN_SLACK_S is left to the filter; a drift beyond it (a sound server re-tuning its
        latency, clocks apart) moves the reference and the canceller follows; a jump moves
        it and the canceller relearns the room."""
        assert self._echo is not None and self._echo_ref is not None
        if self.doubletalk.talking:  # the user's voice is not the echo's: start again
            self._delay.clear()
            return
        self._delay.add(mic, ref)
        self._frames_since_estimate += 1
        if self._frames_since_estimate < 25:
            return
        self._frames_since_estimate = 0
        fix = self._delay.correction_s()
        if fix is not None and abs(fix) > ALIGN_SLACK_S:
            self._echo_ref.shift += fix
            self._delay = DelayEstimator()
            if abs(fix) > 0.03:  # a jump, not a drift: the learnt room is no longer valid
                self._echo.reset()
                self.echo_converged = False
                self._converged_frames = 0
            log.info("echo found %.0f ms off its reference; reference shift now %.0f ms",
                     fix * 1000, self._echo_ref.shift * 1000)

    def _stream(self, source: AudioSource) -> None:
        speaking = False
        prev: float | None = None
        while not self._stop.is_set():
            if self._fault is not None:
                self._fault()
            pcm = source.read()
            # When this frame ended: a period of several frames is read at once.
            now = time.monotonic() - source.backlog_s
            self.heartbeat = now
            if prev is not None and now - prev > STALL_S:  # stalled past any device buffer
                self._stalls += 1
                log.warning("capture stalled for %.0f ms on %s (overrun %d); carrying on",
                            (now - prev) * 1000, source.name, self._stalls)
            prev = now
            self.last_frame_at = now
            self.frames += 1
            self.overruns = source.overruns + self._stalls
            if self.muted:  # privacy: a muted frame goes nowhere, not even the wake engine
                self.muted_frames += 1
                continue
            self._user_over_echo = True
            x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)  # once for the chain
            pcm, x = self._echo_step(pcm, x, now)
            self.acoustic.update(pcm, self._speech.in_speech, x)
            keyword = self._spot(pcm)
            if keyword and self._own_voice is not None and self._own_voice.explains(now):
                # The reply itself said it: while the canceller learns the room, or when
                # the room changes under it, the speaker must not wake or stop itself.
                self.own_voice_ignored += 1
                log.info("ignored %s in the microphone: the speaker said it %.0f ms before",
                         keyword, (now - self._own_voice.said_at) * 1000)
                keyword = None
            if keyword:
                self.last_wake = (keyword, now)
                self.wake_count += 1
                stop = keyword in self._wake.stop_keywords
                if not stop and not self._streaming:
                    with self._lock:
                        self._cut = Cut(now, self._wake.lag_s(keyword))
                self._events(ev.StopSpoken(keyword) if stop else ev.WakeDetected(keyword))
            # What the model hears during a reply: the canceller's residual is replaced by
            # silence unless the user is talking over it (see DoubleTalk); the wake engine
            # heard it all. Earcons are not held back: the user's first words follow them.
            up = pcm
            if self.replying and self._hold_residual and not self._user_over_echo:
                up = bytes(len(pcm))
                self.echo_held += 1
            streaming = self._streaming
            if streaming:
                if not speaking:
                    self._speech.threshold = self.acoustic.speech_threshold()
                    self._speech.min_dbfs = self.acoustic.noise_floor_dbfs + SPEECH_ABOVE_DB
                    self._speech.prime()  # ready at once, and deaf to the wake word
                edge = self._speech.process(up)
                if edge == "start":
                    self._events(ev.SpeechStarted())
                elif edge == "end":
                    self._events(ev.SpeechEnded())
                speaking = True
            else:
                speaking = False
                self._speech.warm(WARM_STEPS)
            self._hand_over(up, now, self.acoustic.level_dbfs)

    def observe(self, kind: str, data: dict[str, object]) -> None:
        """A daemon observer (loop thread): the engine rests while the machine listens."""
        if kind == "state":
            self.wake_rests = data.get("state") == "listening"

    def _spot(self, pcm: bytes) -> str | None:
        if self.wake_rests and not self._wake.stop_armed:
            self._wake_rested = True
            return None
        if self._wake_rested:  # what it holds is from before the rest: start afresh
            self._wake_rested = False
            self._wake.reset()
        return self._wake.process(pcm)

    def _hand_over(self, up: bytes, now: float, level: float) -> None:
        """To the loop while streaming; else into the pre-roll ring, which after a wake word
        is cut to what followed the keyword once its end can be told."""
        with self._lock:
            if self._streaming and self._cut is None:
                self._out.put(Captured(now, up))
                return
            self._preroll.append((up, now, level))
            if self._cut is not None and now >= self._cut.decide_at:
                frames = list(self._preroll)
                first = keyword_cut(frames, self._cut, self.acoustic.noise_floor_dbfs)
                log.debug("wake word ended %.0f ms before its detection",
                          (self._cut.wake_t - frames[first][1] + 0.02) * 1000)
                self._cut, self._held = None, True
                self._preroll.clear()
                if self._streaming:
                    for pcm, t, _ in frames[first:]:
                        self._out.put(Captured(t, pcm))
                    self._held = False
                else:
                    self._preroll.extend(frames[first:])
            elif self._cut is None and not self._held:
                while len(self._preroll) > self._preroll_frames:
                    self._preroll.popleft()
