"""The link against every fault the reference server injects, over real websockets."""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Callable

import pytest
import websockets
from live import DATA, wait_for

from pivox import config
from pivox.audio.wavfile import read_wav
from pivox.core import events as ev
from pivox.link import codec as lc
from pivox.link.options import setup_options
from pivox.link.session import LiveSession, policy_for
from pivox.reference.server import Faults, ReferenceServer

FRAME = 640  # 20 ms at 16 kHz


def numbered(n: int) -> bytes:
    """A quiet frame that carries its own sequence number."""
    return struct.pack("<I", n) + bytes(FRAME - 4)


def sequence(server: ReferenceServer) -> list[int]:
    """The frame numbers the server received, in order (a message may carry several)."""
    out = []
    for m in server.received:
        audio = m.get("realtimeInput", {}).get("audio")
        if audio:
            data = lc.b64decode_any(audio["data"])
            out += [struct.unpack("<I", data[i : i + 4])[0] for i in range(0, len(data), FRAME)]
    return out


class Link:
    def __init__(self, url: str, extra: str = "") -> None:
        cfg = config.parse(f'[link]\nurl = "{url}"\nliveness_s = 2\n{extra}')
        self.events: list[object] = []
        self.session = LiveSession(cfg.link, setup_options(cfg), 20, self.events.append,
                                   policy=policy_for(cfg.link, base_s=0.1))
        self.task: asyncio.Task | None = None

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.events)

    async def __aenter__(self) -> Link:
        self.task = asyncio.create_task(self.session.run())
        self.session.want(True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def stream(link: Link, seconds: float, start: int = 0,
                 until: Callable[[], bool] | None = None) -> int:
    """Send numbered frames at real time; returns the next number."""
    n, t0 = start, time.monotonic()
    while time.monotonic() - t0 < seconds and not (until and until()):
        link.session.send_audio(numbered(n))
        n += 1
        await asyncio.sleep(max(0.0, t0 + (n - start) * 0.02 - time.monotonic()))
    return n


def serve(**faults: object) -> ReferenceServer:
    return ReferenceServer(faults=Faults(**faults) if faults else None)  # type: ignore[arg-type]


def test_goaway_handover_loses_no_microphone_frame() -> None:
    async def main():
        server = serve(goaway_after_s=0.5, goaway_time_left_s=3.0)
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                n = await stream(link, 2.5)
                await wait_for(lambda: len(sequence(server)) >= n, 3)
        finally:
            await server.stop()
        return server, link, n

    server, link, n = asyncio.run(main())
    assert server.stats.connections == 2, "the handover did not open a second connection"
    assert server.stats.resumed == 1, "the second connection did not resume the session"
    assert sequence(server) == list(range(n)), "frames lost or out of order"
    assert link.count(ev.LinkDown) == 0


class SlowNetwork:
    """A TCP relay that delays every byte by `one_way_s` each way, as a real network does:
    a close handshake then takes a round trip, and frames sent meanwhile meet a closing
    connection."""

    def __init__(self, upstream_port: int, one_way_s: float = 0.02) -> None:
        self.upstream_port, self.one_way_s = upstream_port, one_way_s
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while data := await src.read(65536):
            loop.call_later(self.one_way_s, dst.write, data)
        loop.call_later(self.one_way_s, dst.close)


def test_goaway_handovers_over_a_slow_network_lose_no_frame() -> None:
    """A send caught by the closing connection keeps its frame for the next connection."""

    async def main():
        server = serve(connections=0, goaway_after_s=0.05, goaway_time_left_s=0.5)
        await server.start()
        net = SlowNetwork(server.port)
        await net.start()
        try:
            url = server.url.replace(f":{server.port}/", f":{net.port}/")
            async with Link(url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                n = await stream(link, 10, until=lambda: server.stats.connections >= 15)
                await wait_for(lambda: len(sequence(server)) >= n, 5)
        finally:
            await net.stop()
            await server.stop()
        return server, link, n

    server, link, n = asyncio.run(main())
    assert server.stats.connections >= 15
    got = sequence(server)
    assert sorted(set(range(n)) - set(got)) == [], "frames lost across handovers"
    assert got == list(range(n)), "frames duplicated or out of order"
    assert link.count(ev.LinkDown) == 0


def test_a_dropped_connection_resumes_quietly() -> None:
    async def main():
        server = serve(drop_after_s=2.5)
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 2, 8)
        finally:
            await server.stop()
        return server, link

    server, link = asyncio.run(main())
    assert link.count(ev.LinkUp) == 2 and link.count(ev.LinkDown) == 0
    assert server.stats.resumed == 1


def test_1011_retries_with_growing_backoff_and_no_hot_loop() -> None:
    async def main():
        server = serve(connections=0, close_after_s=0.0)
        await server.start()
        try:
            async with Link(server.url) as link:
                await asyncio.sleep(3.0)
        finally:
            await server.stop()
        return server, link

    server, link = asyncio.run(main())
    downs = [e for e in link.events if isinstance(e, ev.LinkDown)]
    assert downs and not any(d.config_error for d in downs)
    assert "1011" in downs[0].reason
    assert 2 <= server.stats.connections <= 12, server.stats.connections  # no hot loop
    assert link.session.policy.attempt >= 2


@pytest.mark.parametrize("code", [1007, 1008])
def test_configuration_close_codes_stop_retrying(code: int) -> None:
    async def main():
        server = serve(connections=0, close_after_s=0.0, close_code=code,
                       close_reason="Request contains an invalid argument.")
        await server.start()
        try:
            async with Link(server.url) as link:
                await asyncio.sleep(1.5)
        finally:
            await server.stop()
        return server, link

    server, link = asyncio.run(main())
    downs = [e for e in link.events if isinstance(e, ev.LinkDown)]
    assert len(downs) == 1 and downs[0].config_error
    assert "invalid argument" in downs[0].reason  # the server's reason reaches the journal
    assert server.stats.connections == 1


def test_a_stalled_server_is_detected_while_a_reply_is_expected() -> None:
    async def main():
        server = serve(stall_after_s=0.2)
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                await asyncio.sleep(0.4)
                link.session.expect_reply()
                t0 = time.monotonic()
                await wait_for(lambda: link.count(ev.LinkUp) == 2, 6)
                took = time.monotonic() - t0
        finally:
            await server.stop()
        return link, took

    link, took = asyncio.run(main())
    assert link.count(ev.LinkUp) == 2, "the dead link was never replaced"
    assert took < 5


def test_malformed_and_oversized_frames_are_skipped() -> None:
    async def main():
        server = ReferenceServer(faults=Faults(malformed_before_reply=True,
                                               oversized_bytes=2_000_000))
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                pcm = read_wav(DATA / "demo_mic.wav") + bytes(32000)
                for i in range(0, len(pcm), FRAME):
                    link.session.send_audio(pcm[i : i + FRAME])
                    await asyncio.sleep(0.005)
                await wait_for(lambda: link.count(ev.TurnComplete) >= 1, 15)
        finally:
            await server.stop()
        return link

    link = asyncio.run(main())
    assert link.session.stats.frame_errors >= 2
    assert link.count(ev.AudioOut) > 10 and link.count(ev.TurnComplete) >= 1
    assert link.count(ev.LinkDown) == 0


def test_refused_resumption_still_reconnects() -> None:
    async def main():
        server = serve(connections=0, refuse_resumption=True, drop_after_s=0.5)
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) >= 2, 5)
        finally:
            await server.stop()
        return server, link

    server, link = asyncio.run(main())
    assert link.count(ev.LinkUp) >= 2 and server.stats.resumed == 0


def test_the_api_key_never_reaches_a_log(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    secret = "AIzaSy-never-print-me-42"
    monkeypatch.setenv("GEMINI_API_KEY", secret)
    caplog.set_level(logging.DEBUG)

    async def main():
        server = ReferenceServer(api_key=secret, faults=Faults(drop_after_s=0.3))  # no grace
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 2, 5)
        finally:
            await server.stop()
        return link

    link = asyncio.run(main())
    assert link.count(ev.LinkUp) == 2
    assert "x-goog-api-key" in caplog.text.lower()  # the header was logged, redacted
    assert secret not in caplog.text


def test_ephemeral_token_uses_the_constrained_method(monkeypatch) -> None:
    token = "auth_tokens/ephemeral-abc123"
    monkeypatch.setenv("GEMINI_API_KEY", token)

    async def main():
        server = ReferenceServer(api_key=token)
        await server.start()
        try:
            async with Link(server.url, 'auth = "token"') as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
        finally:
            await server.stop()
        return server, link

    server, link = asyncio.run(main())
    assert link.count(ev.LinkUp) == 1, "the token was not accepted"
    assert server.paths[-1].endswith("BidiGenerateContentConstrained")


def test_unanswered_pings_do_not_kill_a_healthy_link() -> None:
    """Gemini's pongs can take 8-30 s: the link must not die waiting for them."""

    async def main():
        server = serve(no_pongs=True)
        await server.start()
        try:
            async with Link(server.url, "keepalive_s = 0.2") as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                await asyncio.sleep(2.0)  # ten pings, no pong
                n = await stream(link, 0.5)
                await wait_for(lambda: len(sequence(server)) >= n, 3)
        finally:
            await server.stop()
        return server, link, n

    server, link, n = asyncio.run(main())
    assert link.count(ev.LinkDown) == 0 and server.stats.connections == 1
    assert sequence(server) == list(range(n))


async def scripted_server(replies: list[str], received: list[str]) -> websockets.Server:
    """A websockets server that answers setup with `replies`, then records what comes."""

    async def handler(ws: websockets.ServerConnection) -> None:
        received.append(str(await ws.recv()))
        for reply in replies:
            await ws.send(reply)
        async for msg in ws:
            received.append(str(msg))

    return await websockets.serve(handler, "127.0.0.1", 0)


def _url(server: websockets.Server) -> str:
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"


def test_a_server_error_message_reaches_the_log_and_last_error(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pivox.link")
    error = ('{"error": {"code": 429, "message": "Quota exceeded for key '
             'AIzaSyA-0123456789abcdefghijklmnopqrstu", "status": "RESOURCE_EXHAUSTED"}}')

    async def main():
        received: list[str] = []
        server = await scripted_server(['{"setupComplete": {}}', error], received)
        try:
            async with Link(_url(server)) as link:
                await wait_for(lambda: link.session.snapshot().server_errors == 1, 5)
                snap = link.session.snapshot()
        finally:
            server.close()
        return snap

    snap = asyncio.run(main())
    assert snap.last_error.startswith("server error 429 RESOURCE_EXHAUSTED: Quota exceeded")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "RESOURCE_EXHAUSTED" in warnings[0].getMessage()
    assert "AIzaSyA-0123456789" not in caplog.text and "AIzaSyA-0123456789" not in snap.last_error


def test_a_repeated_setup_complete_starts_no_second_sender() -> None:
    async def main():
        received: list[str] = []
        server = await scripted_server(['{"setupComplete": {}}'] * 3, received)
        try:
            async with Link(_url(server)) as link:
                await wait_for(lambda: link.count(ev.LinkUp) >= 1, 5)
                await asyncio.sleep(0.2)
                senders = [t for t in asyncio.all_tasks() if t.get_name() == "pivox-link-sender"]
                n = await stream(link, 0.3)
                await wait_for(lambda: len(received) > n, 3)
        finally:
            server.close()
        return link, senders, received, n

    link, senders, received, n = asyncio.run(main())
    assert len(senders) == 1
    assert link.count(ev.LinkUp) == 1 and link.session.snapshot().connects_ok == 1
    numbers = [struct.unpack("<I", lc.b64decode_any(
        json.loads(m)["realtimeInput"]["audio"]["data"])[:4])[0] for m in received[1:]]
    assert numbers == list(range(n))


@pytest.mark.parametrize("helper", ("guard", "sender"))
def test_a_helper_that_fails_ends_the_link_task_with_its_error(helper: str) -> None:
    """A liveness guard or a sender that raised would leave a connection half dead (no
    liveness, or a server that hears nothing); the run task must fail with the error."""
    def boom(*_: object) -> list:
        raise RuntimeError(f"{helper} broke")

    async def main():
        server = serve()
        await server.start()
        try:
            async with Link(server.url) as link:
                await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
                if helper == "guard":
                    link.session.policy.tick = boom  # type: ignore[method-assign]
                else:
                    link.session._uplink._next_message = boom  # type: ignore[method-assign]
                    link.session.send_audio(numbered(0))
                assert link.task is not None
                await wait_for(link.task.done, 3)
                error = link.task.exception() if link.task.done() else None
        finally:
            await server.stop()
        return error

    error = asyncio.run(main())
    assert isinstance(error, RuntimeError) and f"{helper} broke" in str(error), error


def test_the_link_check_passes_while_it_works_and_tells_a_stall() -> None:
    """Connected or backing off, the task is back from each step on time; stopped
    inside a step (the loop running on), its check says so a few seconds later."""
    async def main():
        server = serve()
        await server.start()
        verdicts: list[str] = []
        async with Link(server.url) as link:
            await wait_for(lambda: link.count(ev.LinkUp) == 1, 5)
            for _ in range(20):  # connected
                verdicts.append(link.session.stalled(time.monotonic()))
                await asyncio.sleep(0.05)
            await server.stop()
            await wait_for(lambda: link.count(ev.LinkDown) >= 1, 5)
            for _ in range(20):  # reconnecting with backoff against nothing
                verdicts.append(link.session.stalled(time.monotonic()))
                await asyncio.sleep(0.05)
            assert link.task is not None
            link.task.cancel()  # as a stalled await: the task never returns to its policy
            await asyncio.gather(link.task, return_exceptions=True)
            later = link.session.stalled(time.monotonic() + 20)
        return verdicts, later

    verdicts, later = asyncio.run(main())
    assert set(verdicts) == {""}, verdicts
    assert later.startswith("no link step finished"), later
