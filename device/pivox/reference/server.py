"""The bundled reference server: Gemini Live's wire protocol on loopback.

It is the demo's backend and the test suite's peer, so it behaves like Google where a
client can tell the difference: the same URL path and auth, `setup` checked against the
model's profile (1007 / 1008 closes), JSON in binary frames, speech end-pointing on audio
time, a reply streamed faster than real time, `turnComplete` held until the reply would
have finished playing, and barge-in answered with `interrupted` then `turnComplete`.
The "model" rotates through a few recorded replies; it understands nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl as ssl_mod
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pivox.reference.faults import Faults
from pivox.reference.session import Reply, ServerSession, TurnRecord, load_replies
from pivox.secrets import RedactingLogger

log = logging.getLogger("pivox.reference")

METHODS = ("BidiGenerateContent", "BidiGenerateContentConstrained")
PATHS = frozenset(f"/ws/google.ai.generativelanguage.{version}.GenerativeService.{method}"
                  for version in ("v1beta", "v1alpha") for method in METHODS)
LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
RECEIVED_MAX = 10000
HANDLES_MAX = 1000

__all__ = ["LIVE_PATH", "Faults", "ReferenceServer", "Reply", "ServerStats", "TurnRecord",
           "serve_forever"]


@dataclass
class ServerStats:
    connections: int = 0
    setups: int = 0
    audio_bytes_in: int = 0
    turns: int = 0
    replies: int = 0
    interruptions: int = 0
    tool_responses: int = 0
    frames_rejected: int = 0
    resumed: int = 0  # setups that carried one of our handles and kept their context
    last_interrupted_at: float | None = None  # monotonic time `interrupted` was sent


class ReferenceServer:
    """A Gemini Live endpoint on `host:port` (port 0: any free port, see `.port`).

    `silence_ms` of quiet after any speech ends a user turn (a setup's `silenceDurationMs`
    wins), as quickly as Google's automatic activity detection does; `pace` is how many
    times faster than real time replies are streamed; with `playback_hold` the final
    `turnComplete` waits until the reply would have finished playing, as Google's does.
    `api_key`, when given, is the only key accepted (HTTP 403 otherwise); it is never logged.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, silence_ms: int = 500,
                 pace: float = 2.0, api_key: str | None = None,
                 reply_dir: str | Path | None = None, playback_hold: bool = True,
                 ssl: ssl_mod.SSLContext | None = None,
                 tool_call: tuple[str, dict[str, Any]] | None = None,
                 faults: Faults | None = None, keep_audio: bool = False) -> None:
        self.host = host
        # Tests read what each turn held: the user audio per connection (`keep_audio`)
        # and one record per user turn.
        self.keep_audio = keep_audio
        self.heard: dict[int, bytearray] = {}
        self.turn_log: list[TurnRecord] = []
        # Ask the device to run this function (if it declared it) before each reply.
        self.tool_call = tool_call
        self.faults = faults
        self.port = port
        self.silence_ms = silence_ms
        self.pace = pace
        self.playback_hold = playback_hold
        self.replies: list[Reply] = load_replies(reply_dir)
        self.stats = ServerStats()
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []  # request paths (no query: it may hold a key)
        self._api_key = api_key
        self._ssl = ssl
        self._server: Server | None = None
        self._handles: dict[str, int] = {}  # resumption handle -> turns so far

    @property
    def url(self) -> str:
        scheme = "wss" if self._ssl else "ws"
        return f"{scheme}://{self.host}:{self.port}{LIVE_PATH}"

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.port,
                                   process_request=self._check_request, ssl=self._ssl,
                                   max_size=16 * 1024 * 1024, close_timeout=2,
                                   logger=RedactingLogger(log.getChild("websockets")))
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("reference server listening on %s", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            log.info("reference server stopped")

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # -- handshake
    def _check_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        self.paths.append(url.path)
        del self.paths[:-100]
        if url.path not in PATHS:
            log.info("rejected a request for an unknown path (404)")
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self._api_key is not None:
            keys = _presented_keys(request.headers, url.query)
            if not any(hmac.compare_digest(k.encode(), self._api_key.encode()) for k in keys):
                log.info("rejected a connection: %s API key (403)",
                         "wrong" if keys else "no")
                return conn.respond(HTTPStatus.FORBIDDEN, "API key not valid.\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.stats.connections += 1
        host, port = ws.remote_address[:2]
        peer = f"{host}:{port}"
        log.info("connection %d from %s", self.stats.connections, peer)
        session = ServerSession(self, ws)
        try:
            await session.run()
        except ConnectionClosed:
            pass
        finally:
            await session.cancel_reply()
            session.faults.closed()
            log.info("connection from %s closed (%s) after %d turns", peer,
                     ws.close_code if ws.close_code is not None else "no close frame",
                     session.turns)

    def record(self, msg: dict[str, Any]) -> None:
        """Keep a client message for tests to inspect (the most recent RECEIVED_MAX)."""
        self.received.append(msg)
        if len(self.received) > RECEIVED_MAX + RECEIVED_MAX // 10:
            del self.received[:-RECEIVED_MAX]

    def remember(self, handle: str, turns: int) -> None:
        """Issue a resumption handle for a session that has had `turns` turns."""
        self._handles[handle] = turns
        while len(self._handles) > HANDLES_MAX:
            del self._handles[next(iter(self._handles))]

    def resume(self, handle: str) -> int | None:
        """Turns so far of the session `handle` names, or None if it is not one of ours.

        An unknown handle starts a fresh session rather than failing: a server restarted
        under a device must not look like a configuration error to it.
        """
        return self._handles.get(handle) if handle else None


def _presented_keys(headers: Headers, query: str) -> list[str]:
    """Every credential the client offered: header, ?key=, ?access_token=, Authorization."""
    keys = headers.get_all("x-goog-api-key")
    params = parse_qs(query)
    keys += params.get("key", []) + params.get("access_token", [])
    for value in headers.get_all("authorization"):
        scheme, _, token = value.partition(" ")
        if scheme.lower() in ("token", "bearer") and token:
            keys.append(token.strip())
    return keys


async def serve_forever(host: str = "127.0.0.1", port: int = 8765, **kw: Any) -> None:
    """Run a reference server until cancelled (`pivox serve-reference`)."""
    await ReferenceServer(host, port, **kw).serve_forever()
