"""The link adapter: moves frames between the Live codec and a websocket, and reconnects.

One task owns the connection. Microphone frames wait in a send buffer bounded in
milliseconds of audio (oldest dropped and counted), so the capture thread and the loop
never wait on the network. Everything the server says becomes an event for the daemon.
The API key is read at connect time and only ever placed in a request header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from pivox.config import LinkConfig, is_loopback
from pivox.core import events as ev
from pivox.core.models import profile_for
from pivox.link import codec as lc
from pivox.link.backoff import Backoff
from pivox.secrets import RedactingLogger, read_api_key

log = logging.getLogger("pivox.link")
CONFIG_CLOSE_CODES = {1007, 1008}
GRACE_AFTER_S = 2.0  # a session that worked this long gets one quiet, immediate retry
GOAWAY_MARGIN_S = 5.0  # switch over at the latest this long before the server's deadline


def loopback_url(url: str) -> bool:
    return is_loopback(urllib.parse.urlsplit(url).hostname or "")


@dataclass
class LinkStats:
    connected: bool = False
    connects: int = 0
    connects_ok: int = 0  # connections that reached setupComplete
    last_error: str = ""
    resumable: bool = False
    frames_up: int = 0
    frames_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    audio_dropped_ms: int = 0
    frame_errors: int = 0


class LiveSession:
    def __init__(self, cfg: LinkConfig, setup: lc.SetupOptions, frame_ms: int,
                 on_event: Callable[[object], None]) -> None:
        self._cfg = cfg
        self._setup = setup
        self._profile, _ = profile_for(cfg.model)
        self._on_event = on_event
        self._frame_ms = frame_ms
        self._audio: deque[tuple[bytes, float | None]] = deque()
        # Microphone-to-wire latency of recent frames (capture of the last sample to the
        # socket write), in ms: for status and the latency benchmark.
        self.mic_to_wire_ms: deque[float] = deque(maxlen=3000)
        self._max_frames = max(1, cfg.send_buffer_ms // frame_ms)
        self._wanted = asyncio.Event()
        self._kick = asyncio.Event()
        self._has_audio = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._background: set[asyncio.Task] = set()
        self._codec: lc.LiveCodec | None = None
        self.handle: str | None = None
        self._closing = False
        self.expecting_reply = False
        self.turn_open = False  # a model turn is under way (no turnComplete yet)
        self.retry_at = 0.0  # when the current backoff sleep ends (monotonic)
        self._up_since = 0.0  # when the current connection's setup completed
        self._last_frame = 0.0
        self._dead_reason = ""
        self._goaway_at: float | None = None
        self.backoff = Backoff()
        self.stats = LinkStats()

    # -- loop side, never blocking
    def want(self, open_: bool) -> None:
        if open_:
            self._wanted.set()
            self._kick.set()  # a user is waiting: skip the rest of the current backoff
            if self.ready:  # already open: say so again, so the caller's view is current
                asyncio.get_running_loop().call_soon(self._on_event, ev.LinkUp())
        else:
            self._wanted.clear()
            self._audio.clear()
            if self._ws is not None:
                self._spawn(self._ws.close(1000, "idle"))

    def send_audio(self, pcm: bytes, captured_at: float | None = None) -> None:
        if len(self._audio) >= self._max_frames:
            self._audio.popleft()
            self.stats.audio_dropped_ms += self._frame_ms
        self._audio.append((pcm, captured_at))
        self._has_audio.set()

    def clear_audio(self) -> None:
        self._audio.clear()

    @property
    def ready(self) -> bool:
        return self._codec is not None and self._codec.phase is lc.Phase.READY

    # -- the task
    async def run(self) -> None:
        """Keep a session open while wanted. A drop after a working session is retried
        once at once (audio stays buffered, the handle resumes the context) before the
        speaker is told the link is down; after that, backoff with full jitter."""
        grace = False
        while not self._closing:
            await self._wanted.wait()
            started = time.monotonic()
            was_up = self.stats.connects_ok
            error = await self._connect_once()
            lived = time.monotonic() - self._up_since if self._up_since else 0.0
            self._up_since = 0.0
            self.backoff.connected_for(time.monotonic() - started)
            if not self._wanted.is_set():
                continue
            if error is None:
                continue  # closed cleanly while wanted (goAway handover): reconnect now
            reason, config_error = error
            self.stats.last_error = reason
            if (not config_error and self.stats.connects_ok > was_up and not grace
                    and lived >= GRACE_AFTER_S):
                grace = True  # the session worked: one quiet, immediate retry first
                log.info("link dropped (%s); reconnecting", reason)
                continue
            grace = False
            self._on_event(ev.LinkDown(reason, config_error=config_error))
            if config_error:  # retrying the same setup will not help; the machine retries
                self._wanted.clear()
                continue
            delay = self.backoff.next_delay()
            self.retry_at = time.monotonic() + delay
            log.info("link down (%s); retrying in %.1f s", reason, delay)
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=delay)

    def target(self) -> tuple[str, dict[str, str]] | tuple[str, None]:
        """The URL and headers for the next connection, or an error text and None."""
        url = self._cfg.url
        if url.startswith("ws://") and not loopback_url(url) and not self._cfg.allow_insecure:
            return "refusing unencrypted ws:// to a non-loopback host", None
        key = read_api_key(self._cfg)
        if not key:
            if loopback_url(url):
                return url, {}
            return f"no API key: set ${self._cfg.api_key_env} or [link] api_key_file", None
        if self._cfg.auth == "token":  # an ephemeral token, on the constrained method
            if not url.split("?")[0].endswith("Constrained"):
                url = url.replace("BidiGenerateContent", "BidiGenerateContentConstrained", 1)
            return url, {"Authorization": f"Token {key}"}
        return url, {"x-goog-api-key": key}

    async def _connect_once(self) -> tuple[str, bool] | None:
        url, headers = self.target()
        if headers is None:
            return (url, True)
        codec = lc.LiveCodec(self._profile)
        try:
            async with connect(url, additional_headers=headers,
                               open_timeout=self._cfg.connect_timeout_s,
                               ping_interval=self._cfg.keepalive_s, ping_timeout=None,
                               close_timeout=2,
                               max_size=16 * 1024 * 1024, compression=None,
                               logger=RedactingLogger(log.getChild("websockets"))) as ws:
                self._ws, self._codec = ws, codec
                self.stats.connects += 1
                self._last_frame = time.monotonic()
                codec.start(self._setup, self.handle)
                await self._flush_codec(ws, codec)
                guard = asyncio.create_task(self._guard(ws, codec))
                try:
                    await self._converse(ws, codec)
                finally:
                    guard.cancel()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            if self._dead_reason:
                return (self._dead_reason, False)
            if rcvd is None:
                return ("connection lost", False)
            if rcvd.code == 1000:
                return None
            reason = f"server closed with {rcvd.code}: {rcvd.reason}"
            return (reason, rcvd.code in CONFIG_CLOSE_CODES)
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            return (f"server refused the connection (HTTP {status})", status in (401, 403, 404))
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            return (_describe(exc), False)
        finally:
            self._ws = self._codec = None
            self._dead_reason = ""
            self._goaway_at = None
            self.expecting_reply = self.turn_open = False
            self.stats.connected = False
        if self._dead_reason:
            return (self._dead_reason, False)
        return None

    async def _guard(self, ws: ClientConnection, codec: lc.LiveCodec) -> None:
        """Liveness without trusting pongs (Gemini's can take 8-30 s): the link is dead
        when setup never completes, or no frame comes while a reply is expected. Also
        carries out a pending goAway handover when the server goes quiet."""
        while True:
            await asyncio.sleep(0.25)
            quiet = time.monotonic() - self._last_frame
            if codec.phase is not lc.Phase.READY and quiet > self._cfg.connect_timeout_s:
                self._dead_reason = "setup not answered"
            elif self.expecting_reply and quiet > self._cfg.liveness_s:
                self._dead_reason = f"no answer for {quiet:.0f} s"
            elif self._handover_due():
                await ws.close(1000, "goAway handover")
                return
            if self._dead_reason:
                log.warning("link dead: %s", self._dead_reason)
                ws.transport.abort()
                return

    def _handover_due(self) -> bool:
        """After goAway: switch between turns, or a few seconds before the deadline."""
        if self._goaway_at is None:
            return False
        return not self.turn_open or time.monotonic() >= self._goaway_at

    def expect_reply(self) -> None:
        """The user finished speaking: a frame should come soon (see _guard)."""
        self.expecting_reply = True
        self.turn_open = True
        self._last_frame = time.monotonic()

    async def _converse(self, ws: ClientConnection, codec: lc.LiveCodec) -> None:
        sender: asyncio.Task | None = None
        try:
            async for frame in ws:
                self._last_frame = time.monotonic()
                self.stats.frames_down += 1
                self.stats.bytes_down += len(frame)
                for event in codec.receive(frame):
                    self._handle(event, ws, codec)
                    if isinstance(event, lc.SetupComplete):
                        sender = asyncio.create_task(self._send_audio(ws, codec))
                await self._flush_codec(ws, codec)
                if self._handover_due():
                    await ws.close(1000, "goAway handover")
        finally:
            if sender is not None:
                sender.cancel()

    def _handle(self, event: lc.ServerEvent, ws: ClientConnection, codec: lc.LiveCodec) -> None:
        if isinstance(event, lc.SetupComplete):
            self.stats.connected = True
            self.stats.connects_ok += 1
            self._up_since = time.monotonic()
            self.stats.last_error = ""
            self._on_event(ev.LinkUp())
        elif isinstance(event, lc.SessionHandle):
            if event.resumable and event.handle:  # resumable:false keeps the previous one
                self.handle = event.handle
            self.stats.resumable = event.resumable
        elif isinstance(event, lc.GoAway):
            log.info("server closes this connection in %.0f s; switching over",
                     event.time_left_s)
            self._goaway_at = time.monotonic() + max(0.0, event.time_left_s - GOAWAY_MARGIN_S)
        elif isinstance(event, lc.FrameError):
            self.stats.frame_errors += 1
            log.warning("skipped a bad server frame: %s", event.reason)
        else:
            if isinstance(event, ev.GenerationComplete | ev.TurnComplete | ev.Interrupted):
                self.expecting_reply = False
            if isinstance(event, ev.AudioOut):
                self.turn_open = True  # a goAway now waits for this turn's turnComplete
            elif isinstance(event, ev.TurnComplete | ev.Interrupted):
                self.turn_open = False
            self._on_event(event)

    async def _send_audio(self, ws: ClientConnection, codec: lc.LiveCodec) -> None:
        while True:
            await self._has_audio.wait()
            while self._audio:
                pcm, captured_at = self._audio.popleft()
                codec.send_audio(pcm)
                await self._flush_codec(ws, codec)
                if captured_at is not None:
                    self.mic_to_wire_ms.append((time.monotonic() - captured_at) * 1000)
            self._has_audio.clear()

    def send_tool_response(self, call: lc.FunctionCall, result: dict[str, Any],
                           scheduling: str) -> None:
        if self._ws is not None and self._codec is not None and self.ready:
            self._codec.send_tool_response(call, result, scheduling)
            self._spawn(self._flush_codec(self._ws, self._codec))

    def send_audio_end(self) -> None:
        if self._ws is not None and self._codec is not None and self.ready:
            self._audio.clear()
            self._codec.send_audio_end()
            self._spawn(self._flush_codec(self._ws, self._codec))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _flush_codec(self, ws: ClientConnection, codec: lc.LiveCodec) -> None:
        for frame in codec.frames_to_send():
            self.stats.frames_up += 1
            self.stats.bytes_up += len(frame)
            await ws.send(frame)

    async def close(self) -> None:
        self._closing = True
        self._wanted.clear()
        if self._ws is not None:
            await self._ws.close(1000, "shutting down")


def _describe(exc: BaseException) -> str:
    """Short, secret-free text for a connection failure."""
    if isinstance(exc, TimeoutError):
        return "connect timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
