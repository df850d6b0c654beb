"""Faults the reference server can inject, so tests can prove the device survives them.

Each applies to the first `connections` connections (0: every connection), measured from
that connection's setupComplete: the network drops, the server stalls, closes with a code,
sends goAway and then closes at its deadline, sends malformed or oversized frames, or
refuses to resume a session.

The protocol code in `session.py` knows none of this. It calls a `Hooks` object at four
named points (may this setup resume, setup complete, before a reply, before each message)
and once when the connection ends; `NO_FAULTS` answers every call as a healthy server
would, `Injector` injects one connection's `Faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode

DEADLINE_REASON = "Deadline expired before operation could complete."


@dataclass
class Faults:
    connections: int = 1
    drop_after_s: float | None = None  # the TCP connection vanishes (no close frame)
    stall_after_s: float | None = None  # the server goes quiet, the socket stays open
    close_after_s: float | None = None
    close_code: int = 1011
    close_reason: str = "The service is currently unavailable."
    goaway_after_s: float | None = None
    goaway_time_left_s: float = 10.0  # then closes with 1011 at the deadline, as Google does
    malformed_before_reply: bool = False
    oversized_bytes: int = 0  # a frame this big before each reply (0: none)
    refuse_resumption: bool = False
    no_pongs: bool = False  # pings go unanswered (Gemini's pongs can take 8-30 s)

    def applies(self, connection: int) -> bool:
        return self.connections == 0 or connection <= self.connections


class Hooks:
    """The points where a session lets faults in. This base injects none."""

    def may_resume(self) -> bool:
        """Whether a setup's resumption handle may be honoured."""
        return True

    def setup_complete(self, ws: ServerConnection) -> None:
        """`setupComplete` has been sent: timed faults start counting from here."""

    async def before_reply(self, ws: ServerConnection) -> None:
        """A reply is about to be streamed."""

    async def silenced(self, ws: ServerConnection) -> bool:
        """True if the next message must not be sent (returns once the socket closes)."""
        return False

    def closed(self) -> None:
        """The connection has ended: stop whatever is still running for it."""


NO_FAULTS = Hooks()


def hooks_for(faults: Faults | None, connection: int) -> Hooks:
    """The hooks for the `connection`-th connection (counted from 1)."""
    if faults is None or not faults.applies(connection):
        return NO_FAULTS
    return Injector(faults)


def _frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class Injector(Hooks):
    """One connection's faults."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.stalled = False
        self._task: asyncio.Task[None] | None = None

    def may_resume(self) -> bool:
        return not self.faults.refuse_resumption

    def setup_complete(self, ws: ServerConnection) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._timed(ws))

    async def silenced(self, ws: ServerConnection) -> bool:
        if self.stalled:
            await ws.wait_closed()  # a stalled server says nothing more; it only closes
        return self.stalled

    def closed(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def before_reply(self, ws: ServerConnection) -> None:
        if self.faults.malformed_before_reply:
            await ws.send(b'{"serverContent": {"modelTurn": ')
            await ws.send(b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":'
                          b'{"mimeType":"audio/pcm;rate=24000","data":"@@not-b64"}}]}}}')
        if self.faults.oversized_bytes:
            pad = "A" * self.faults.oversized_bytes
            await ws.send(f'{{"serverContent":{{"padding":"{pad}"}}}}'.encode())

    async def _timed(self, ws: ServerConnection) -> None:
        """Timed faults for one connection, started when its setup completes."""
        f = self.faults
        if f.no_pongs:
            protocol, send_frame = ws.protocol, ws.protocol.send_frame

            def without_pongs(frame: Frame) -> None:
                if frame.opcode is not Opcode.PONG:
                    send_frame(frame)

            # A server that never answers pings: websockets offers no switch for it.
            protocol.send_frame = without_pongs  # type: ignore[method-assign]
        timed = [(t, kind) for t, kind in ((f.drop_after_s, "drop"),
                                           (f.stall_after_s, "stall"),
                                           (f.close_after_s, "close"),
                                           (f.goaway_after_s, "goaway")) if t is not None]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at, kind in sorted(timed):
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if kind == "drop":
                ws.transport.abort()
                return
            if kind == "stall":
                self.stalled = True
            elif kind == "close":
                await ws.close(f.close_code, f.close_reason)
                return
            else:  # goAway goes out even from a stalled server: it is the server's last word
                await ws.send(_frame({"goAway": {"timeLeft": f"{f.goaway_time_left_s:g}s"}}))
                await asyncio.sleep(f.goaway_time_left_s)
                with contextlib.suppress(Exception):
                    await ws.close(1011, DEADLINE_REASON)
                return
