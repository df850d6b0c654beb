"""The microphone's way to the model: frames that wait in a row leave as one message of up
to UPLINK_MS, in order, and an activity mark is never folded into audio."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

from pivox.core.formats import FRAME_BYTES, UPLINK_MS
from pivox.core.models import profile_for
from pivox.link import codec as lc
from pivox.link.uplink import Uplink


def sent_messages(queue: list[bytes | str], frame_ms: int = 20) -> list[bytes | str]:
    """What one connection's sender writes for `queue` (frames, or "start"/"end" marks):
    each message's audio, or the mark's name."""
    async def main() -> list[str]:
        codec = lc.LiveCodec(profile_for("gemini-3.8-live")[0])
        codec.start(lc.SetupOptions(model="gemini-3.8-live"))
        codec.frames_to_send()
        codec.receive(b'{"setupComplete":{}}')
        up = Uplink(max_frames=100, frame_ms=frame_ms)
        for item in queue:
            if isinstance(item, str):
                up.activity(item == "start")
            else:
                up.audio(item, 1.0)
        written: list[str] = []

        async def flush() -> None:
            written.extend(codec.frames_to_send())

        sender = asyncio.create_task(up.drain(codec, flush, lambda: False))
        await asyncio.sleep(0.1)  # it sends what waits, then waits for more
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        return written

    out: list[bytes | str] = []
    for frame in asyncio.run(main()):
        body = json.loads(frame)["realtimeInput"]
        out.append(_audio(frame) or next(iter(body)))
    return out


def _audio(frame: str) -> bytes:
    audio = json.loads(frame)["realtimeInput"].get("audio")
    return base64.b64decode(audio["data"]) if audio else b""


def frame(i: int) -> bytes:
    return bytes([i]) * FRAME_BYTES


def test_frames_in_a_row_leave_as_one_message_of_at_most_uplink_ms() -> None:
    per = UPLINK_MS // 20
    frames = [frame(i) for i in range(2 * per + 1)]
    sent = sent_messages(list(frames))
    assert sent == [b"".join(frames[:per]), b"".join(frames[per : 2 * per]), frames[-1]]


def test_an_activity_mark_keeps_its_place_between_the_audio() -> None:
    sent = sent_messages([frame(1), "start", frame(2), frame(3), "end", frame(4)])
    assert sent == [frame(1), "activityStart", frame(2) + frame(3), "activityEnd", frame(4)]
