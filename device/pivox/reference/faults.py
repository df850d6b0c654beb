"""Faults the reference server can inject, so tests can prove the device survives them.

Each applies to the first `connections` connections (0: every connection), measured from
that connection's setupComplete: the network drops, the server stalls, closes with a code,
sends goAway and then closes at its deadline, sends malformed or oversized frames, or
refuses to resume a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.frames import Frame, Opcode

if TYPE_CHECKING:
    from pivox.reference.session import LiveSession

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

    async def run(self, session: LiveSession) -> None:
        """Timed faults for one connection, started when its setup completes."""
        ws = session.ws
        if self.no_pongs:
            protocol, send_frame = ws.protocol, ws.protocol.send_frame

            def without_pongs(frame: Frame) -> None:
                if frame.opcode is not Opcode.PONG:
                    send_frame(frame)

            protocol.send_frame = without_pongs  # type: ignore[method-assign]
        timed = [(t, kind) for t, kind in ((self.drop_after_s, "drop"),
                                           (self.stall_after_s, "stall"),
                                           (self.close_after_s, "close"),
                                           (self.goaway_after_s, "goaway")) if t is not None]
        loop = asyncio.get_running_loop()
        start = loop.time()
        for at, kind in sorted(timed):
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            if kind == "drop":
                ws.transport.abort()
                return
            if kind == "stall":
                session.stalled = True
            elif kind == "close":
                await ws.close(self.close_code, self.close_reason)
                return
            else:
                await session.send_now({"goAway": {"timeLeft": f"{self.goaway_time_left_s:g}s"}})
                await asyncio.sleep(self.goaway_time_left_s)
                with contextlib.suppress(Exception):
                    await ws.close(1011, DEADLINE_REASON)
                return

    async def before_reply(self, session: LiveSession) -> None:
        if self.malformed_before_reply:
            await session.send_raw(b'{"serverContent": {"modelTurn": ')
            await session.send_raw(b'{"serverContent":{"modelTurn":{"parts":[{"inlineData":'
                                   b'{"mimeType":"audio/pcm;rate=24000","data":"@@not-b64"}}]}}}')
        if self.oversized_bytes:
            pad = "A" * self.oversized_bytes
            await session.send_raw(f'{{"serverContent":{{"padding":"{pad}"}}}}'.encode())
