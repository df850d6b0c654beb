"""The Gemini Live link adapter: moves frames between the codec and a websocket, and carries
out what the link policy (`core/linkpolicy.py`) decides. It is the only part that sleeps.

One task owns the connection. Microphone frames wait in `link/uplink.py`'s send buffer
(bounded, a frame leaves it only once written). Everything the server says becomes an
event for the daemon. Its helpers (the sender, the liveness guard) cannot die alone, and
every step it takes is bounded (`link/vigil.py`). The API key is read at connect time
and only ever placed in a request header.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from pivox.config import LinkConfig
from pivox.core import events as ev
from pivox.core import linkpolicy as lp
from pivox.core.models import profile_for
from pivox.link import codec as lc
from pivox.link import dial
from pivox.link.base import FunctionCall, LinkSnapshot, LinkStats
from pivox.link.uplink import Uplink
from pivox.link.vigil import Vigil, watch
from pivox.secrets import RedactingLogger, scrub

log = logging.getLogger("pivox.link")
GUARD_TICK_S = 0.25
HANDOVER_DRAIN_S = 2.0  # wait this long for the frame being written before a handover


def policy_for(cfg: LinkConfig, rng: Any = None, **overrides: Any) -> lp.LinkPolicy:
    """The link policy for `cfg`; `overrides` replace any `linkpolicy.Params` field."""
    params = lp.Params(setup_timeout_s=cfg.connect_timeout_s, liveness_s=cfg.liveness_s,
                       probe_s=cfg.probe_s, spread_s=cfg.reconnect_spread_s)
    return lp.LinkPolicy(dataclasses.replace(params, **overrides), rng)


class _Connection:
    """One websocket's parts: its codec, its single sender, and the handshake in flight."""

    def __init__(self, codec: lc.LiveCodec) -> None:
        self.codec = codec
        self.ws: ClientConnection | None = None
        self.opening: asyncio.Future[ClientConnection] | None = None
        self.killed = False
        self.sender: asyncio.Task[None] | None = None
        self.stop_sending = False
        self.error: BaseException | None = None  # a helper task's, raised by the run task


class LiveSession:
    """Gemini Live as a `pivox.link.base.RealtimeLink`."""

    name = "gemini-live"

    def __init__(self, cfg: LinkConfig, setup: lc.SetupOptions, frame_ms: int,
                 on_event: Callable[[object], None], *,
                 policy: lp.LinkPolicy | None = None) -> None:
        self._cfg = cfg
        self._setup = setup
        self._profile, _ = profile_for(cfg.model)
        self._on_event = on_event
        self._frame_ms = frame_ms
        self.policy = policy if policy is not None else policy_for(cfg)
        self._uplink = Uplink(cfg.send_buffer_ms // frame_ms, frame_ms)
        self.mic_to_wire_ms = self._uplink.mic_to_wire_ms  # for the latency benchmark
        self._wake = asyncio.Event()
        self._conn: _Connection | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.handle: str | None = None
        self._closing = False
        self.stats = LinkStats()
        self._vigil = Vigil()

    # -- loop side, never blocking
    def want(self, open_: bool) -> None:
        if not open_:
            self._clear_audio()
        now = time.monotonic()
        self._vigil.woken(now)
        actions = self.policy.want(now, open_)
        if lp.ReportUp() in actions:  # already open: tell the caller after it returns
            asyncio.get_running_loop().call_soon(self._on_event, ev.LinkUp())
            actions = [a for a in actions if not isinstance(a, lp.ReportUp)]
        self._do(actions)
        self._wake.set()

    def network_changed(self) -> None:
        """A default route or a usable address appeared: a wait for the link ends now."""
        now = time.monotonic()
        self._vigil.woken(now)
        self._do(self.policy.network_changed(now))
        self._wake.set()

    def send_audio(self, pcm: bytes, captured_at: float | None = None) -> None:
        self._uplink.audio(pcm, captured_at)

    def send_activity(self, start: bool) -> None:
        """activityStart / activityEnd (local turn detection), in order with the audio."""
        self._uplink.activity(start)

    def _clear_audio(self) -> None:
        self._uplink.clear()

    @property
    def ready(self) -> bool:
        return self._conn is not None and self._conn.codec.phase is lc.Phase.READY

    def expect_reply(self) -> None:
        """The user finished speaking: a frame should come soon (the policy's liveness)."""
        self.policy.reply_expected(time.monotonic())

    def snapshot(self) -> LinkSnapshot:
        stats = dataclasses.replace(self.stats, audio_dropped_ms=self._uplink.dropped_ms)
        return LinkSnapshot(backend=self.name, **dataclasses.asdict(stats),
                            retry_in_s=self.policy.retry_in(time.monotonic()))

    def stalled(self, now: float) -> str:
        return self._vigil.stalled(now)

    # -- the task
    async def run(self) -> None:
        """Connect, probe or wait, as the policy says, until closed."""
        while not self._closing:
            self._wake.clear()
            now = time.monotonic()
            step = self.policy.next_step(now)
            if isinstance(step, lp.Connect):
                self._vigil.due = now + self._cfg.connect_timeout_s  # then the guard's ticks
                await self._connect_once()
            elif isinstance(step, lp.Probe):
                limit = max(0.2, min(self.policy.params.probe_s, self._cfg.connect_timeout_s))
                self._vigil.due = now + limit
                ok = await self._until_woken(dial.probe(self._cfg.url), limit)
                if ok is not None:
                    self.policy.probe_result(time.monotonic(), ok)
            else:
                timeout = None if step.until is None else max(0.0, step.until - now)
                with self._vigil.waiting(step.until), contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    def target(self) -> tuple[str, dict[str, str]] | tuple[str, None]:
        """The URL and headers for the next connection, or an error text and None."""
        return dial.target(self._cfg)

    async def _connect_once(self) -> None:
        """One connection from handshake to close; its outcome goes to the policy."""
        p = self.policy
        p.attempt_started(time.monotonic())
        url, headers = self.target()
        if headers is None:
            self._do(p.connect_failed(time.monotonic(), url, config=True))
            return
        conn = self._conn = _Connection(lc.LiveCodec(self._profile))
        try:
            ws = await self._open(conn, url, headers)
        except asyncio.CancelledError:
            self._conn = None
            task = asyncio.current_task()
            if not conn.killed or (task is not None and task.cancelling()):
                raise
            self._do(p.connect_failed(time.monotonic(), "network changed"))
            return
        except websockets.InvalidStatus as exc:
            self._conn = None
            self._do(p.connect_failed(time.monotonic(), dial.describe(exc),
                                      status=exc.response.status_code))
            return
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            self._conn = None
            self._do(p.connect_failed(time.monotonic(), dial.describe(exc)))
            return
        self.stats.connects += 1
        try:
            await self._converse(conn, ws)
        finally:
            self._conn = None
            self.stats.connected = False
            if conn.sender is not None:
                conn.sender.cancel()
            ws.transport.abort()  # already closed unless we are being cancelled
        rcvd = ws.protocol.close_rcvd
        self._do(p.closed(time.monotonic(), rcvd.code if rcvd else None,
                          rcvd.reason if rcvd else ""))

    async def _open(self, conn: _Connection, url: str,
                    headers: dict[str, str]) -> ClientConnection:
        conn.opening = asyncio.ensure_future(dial.open_ws(
            self._cfg, url, headers, RedactingLogger(log.getChild("websockets"))))
        ws = await conn.opening
        conn.ws = ws
        return ws

    async def _converse(self, conn: _Connection, ws: ClientConnection) -> None:
        p = self.policy
        guard = asyncio.create_task(self._guard(conn), name="pivox-link-guard")
        self._watch(conn, guard)
        try:
            conn.codec.start(self._setup, self.handle)
            await self._flush(conn)
            self._do(p.opened(time.monotonic()), conn)
            async for frame in ws:
                now = time.monotonic()
                p.frame_received(now)
                self.stats.frames_down += 1
                self.stats.bytes_down += len(frame)
                for event in conn.codec.receive(frame):
                    self._handle(event, conn, now)
        except websockets.ConnectionClosed:
            pass
        finally:
            guard.cancel()
        if conn.error is not None:
            raise conn.error

    @staticmethod
    def _watch(conn: _Connection, task: asyncio.Task[None]) -> None:
        """A helper's error ends the connection and is raised by the run task."""
        def failed(exc: BaseException) -> None:
            conn.error = conn.error or exc
            if conn.ws is not None:
                conn.ws.transport.abort()
        watch(task, failed)

    async def _guard(self, conn: _Connection) -> None:
        """Liveness and a due handover, checked a few times a second."""
        while True:
            self._vigil.due = time.monotonic() + GUARD_TICK_S
            await asyncio.sleep(GUARD_TICK_S)
            self._do(self.policy.tick(time.monotonic()), conn)

    def _handle(self, event: lc.ServerEvent, conn: _Connection, now: float) -> None:
        p = self.policy
        if isinstance(event, lc.SetupComplete):
            actions = p.setup_complete(now)
            if not actions:
                log.warning("ignored a repeated setupComplete")
            self._do(actions, conn)
        elif isinstance(event, lc.SessionHandle):
            if event.resumable and event.handle:  # resumable:false keeps the previous one
                self.handle = event.handle
            self.stats.resumable = event.resumable
        elif isinstance(event, lc.GoAway):
            log.info("server closes this connection in %.0f s; switching over",
                     event.time_left_s)
            self._do(p.go_away(now, event.time_left_s), conn)
        elif isinstance(event, lc.ServerError):
            self.stats.server_errors += 1
            text = scrub(f"server error {event.code} {event.status}: {event.message}")
            self.stats.last_error = text
            log.warning("%s", text)
            p.server_error(now, event.status, event.message)
        elif isinstance(event, lc.FrameError):
            self.stats.frame_errors += 1
            log.warning("skipped a bad server frame: %s", event.reason)
        else:
            if isinstance(event, ev.GenerationComplete):
                p.generation_complete(now)
            elif isinstance(event, ev.AudioOut):
                p.turn_opened(now)
            elif isinstance(event, ev.TurnComplete | ev.Interrupted):
                self._do(p.turn_closed(now), conn)
            self._on_event(event)

    def _do(self, actions: list[lp.Action], conn: _Connection | None = None) -> None:
        """Carry out the policy's actions (never blocking: slow ones run as tasks)."""
        conn = conn or self._conn
        for action in actions:
            match action:
                case lp.StartSending():
                    if conn is not None and conn.ws is not None and conn.sender is None:
                        conn.sender = asyncio.create_task(self._sender(conn),
                                                          name="pivox-link-sender")
                        self._watch(conn, conn.sender)
                case lp.ReportUp():
                    self.stats.connected = True
                    self.stats.connects_ok += 1
                    self.stats.last_error = ""
                    self._on_event(ev.LinkUp())
                case lp.Reconnecting(reason):
                    self.stats.last_error = reason
                    log.info("link dropped (%s); reconnecting", reason)
                case lp.ReportDown(reason, config_error, retry_in):
                    self.stats.last_error = reason
                    if not config_error:
                        log.info("link down (%s); retrying in %.1f s", reason, retry_in)
                    self._on_event(ev.LinkDown(reason, config_error=config_error))
                case lp.StopRetrying(reason):
                    log.warning("link: %s; not retrying until asked again", reason)
                case lp.Kill(reason, quiet):
                    if conn is not None:
                        self._kill(conn, reason, quiet)
                case lp.HandOver():
                    if conn is not None and conn.ws is not None:
                        self._spawn(self._close(conn, conn.ws, "goAway handover"))
                case lp.Disconnect():
                    if conn is not None and conn.ws is not None:
                        self._spawn(self._close(conn, conn.ws, "idle"))

    def _kill(self, conn: _Connection, reason: str, quiet: bool) -> None:
        conn.killed = True
        log.log(logging.INFO if quiet else logging.WARNING, "%s: %s",
                "replacing the connection" if quiet else "link dead", reason)
        if conn.ws is not None:
            conn.ws.transport.abort()
        elif conn.opening is not None:
            conn.opening.cancel()

    async def _close(self, conn: _Connection, ws: ClientConnection, why: str) -> None:
        """A clean close: the frame being written goes out first, the rest stay buffered."""
        conn.stop_sending = True
        self._uplink.wake()  # the sender sees the stop
        if conn.sender is not None:
            await asyncio.wait({conn.sender}, timeout=HANDOVER_DRAIN_S)
        await ws.close(1000, why)

    async def _sender(self, conn: _Connection) -> None:
        await self._uplink.drain(conn.codec, lambda: self._flush(conn),
                                 lambda: conn.stop_sending)

    def send_tool_response(self, call: FunctionCall, result: dict[str, Any],
                           scheduling: str) -> None:
        conn = self._conn
        if conn is not None and self.ready:
            conn.codec.send_tool_response(call, result, scheduling)
            self._spawn(self._flush(conn))

    def send_text(self, text: str) -> bool:
        """A user turn as text (clientContent); False when no session is open to take it."""
        if (conn := self._conn) is None or not self.ready:
            return False
        conn.codec.send_text(text)
        self._spawn(self._flush(conn))
        return True

    def send_audio_end(self) -> None:
        conn = self._conn
        if conn is not None and self.ready:
            self._clear_audio()
            conn.codec.send_audio_end()
            self._spawn(self._flush(conn))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._quietly(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _quietly(coro: Coroutine[Any, Any, None]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await coro

    async def _flush(self, conn: _Connection) -> None:
        assert conn.ws is not None
        for frame in conn.codec.frames_to_send():
            self.stats.frames_up += 1
            self.stats.bytes_up += len(frame)
            await conn.ws.send(frame)

    async def _until_woken(self, aw: Awaitable[bool], timeout: float) -> bool | None:
        """`aw`'s result (False if it timed out), or None if the run loop was woken first."""
        work = asyncio.ensure_future(aw)
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({work, woken}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                return work.result()
            return None if woken.done() else False
        finally:
            woken.cancel()
            work.cancel()

    async def close(self) -> None:
        self._closing = True
        self.policy.want(time.monotonic(), False)  # its Disconnect is carried out here
        self._wake.set()
        conn = self._conn
        if conn is not None and conn.ws is not None:
            await self._close(conn, conn.ws, "shutting down")

