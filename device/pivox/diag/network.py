"""The endpoint check: DNS, TCP, TLS, the WebSocket handshake and setup, each timed.

Each step fails with its own hint, so "no network", "a firewall", "a wrong clock" and "a
refused key" read differently. The URL and headers come from the link's own
`LiveSession.target()`, so the check connects exactly as the daemon would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
import urllib.parse
from typing import Any

from pivox import config as config_mod
from pivox.diag.check import FAIL, PASS, WARN, Check, Context
from pivox.secrets import CREDENTIAL


class StepFailed(Exception):
    def __init__(self, detail: str, hint: str) -> None:
        super().__init__(detail)
        self.detail, self.hint = detail, hint


def _ms(t0: float) -> str:
    took = (time.monotonic() - t0) * 1000
    return f"{took:.1f} ms" if took < 10 else f"{took:.0f} ms"


async def _resolve(host: str, port: int) -> str:
    try:
        infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM), 5)
    except (OSError, TimeoutError) as exc:
        raise StepFailed(f"cannot resolve {host}: {exc}", f"check the network and DNS: "
                         f"getent hosts {host}; cat /etc/resolv.conf") from None
    return str(infos[0][4][0])


async def _tcp(host: str, addr: str, port: int) -> None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), 5)
        writer.close()
    except (OSError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else \
            (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
        hint = ("nothing listens there: is the server running? (pivox serve-reference "
                f"--port {port})") if config_mod.is_loopback(host) else \
            f"a firewall or proxy in the way? try: curl -sI https://{host}/"
        raise StepFailed(f"TCP connect to {addr}:{port}: {why}", hint) from None


async def _tls(host: str, addr: str, port: int) -> None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(
            addr, port, ssl=ssl.create_default_context(), server_hostname=host), 10)
        writer.close()
    except ssl.SSLCertVerificationError as exc:
        raise StepFailed(f"TLS certificate not accepted: {exc.verify_message}",
                         "a wrong clock breaks TLS: see the clock check (timedatectl); "
                         "or update ca-certificates") from None
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise StepFailed(f"TLS handshake: {exc or type(exc).__name__}",
                         "a proxy intercepting TLS? try: openssl s_client -connect "
                         f"{host}:{port}") from None


async def _setup_complete(ws: Any, codec: Any) -> bool:
    from pivox.link import codec as lc

    async for frame in ws:
        for event in codec.receive(frame):
            if isinstance(event, lc.SetupComplete):
                return True
    return False


async def _websocket(ctx: Context, target: str, headers: dict[str, str],
                     steps: list[str]) -> None:
    """Handshake, then the daemon's own setup message, until setupComplete."""
    import logging

    import websockets

    from pivox.core.models import profile_for
    from pivox.link import codec as lc
    from pivox.link.dial import open_ws
    from pivox.link.options import setup_options
    from pivox.secrets import RedactingLogger

    link = ctx.cfg.link
    t0 = time.monotonic()
    quiet = RedactingLogger(logging.getLogger("pivox.diag.websockets"))
    try:
        async with open_ws(link, target, headers, quiet) as ws:  # as the service dials
            steps.append(f"WebSocket {_ms(t0)}")
            profile, _ = profile_for(link.model)
            codec = lc.LiveCodec(profile)
            codec.start(setup_options(ctx.cfg), None)
            t0 = time.monotonic()
            for frame in codec.frames_to_send():
                await ws.send(frame)
            if not await asyncio.wait_for(_setup_complete(ws, codec), link.connect_timeout_s):
                raise StepFailed("setup was not answered", "check [link] model")
            steps.append(f"setup answered {_ms(t0)}")
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise StepFailed(f"the API key was refused (HTTP {status})",
                             f"check the key in {CREDENTIAL} (or ${link.api_key_env})"
                             ) from None
        raise StepFailed(f"the server refused the WebSocket (HTTP {status})",
                         "check [link] url") from None
    except websockets.ConnectionClosed as exc:
        rcvd = exc.rcvd
        reason = f"closed with {rcvd.code}: {rcvd.reason}" if rcvd else "connection lost"
        hint = "check [link] model and options: pivox config check" if rcvd and \
            rcvd.code in (1007, 1008) else "try again; see the journal check"
        raise StepFailed(f"setup refused: {reason}", hint) from None
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        raise StepFailed(f"WebSocket: {type(exc).__name__}: {exc}",
                         "check [link] url") from None


async def _endpoint(ctx: Context) -> Check:
    from pivox.link.options import setup_options
    from pivox.link.session import LiveSession

    link = ctx.cfg.link
    parts = urllib.parse.urlsplit(link.url)
    host = parts.hostname or ""
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    shown = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    steps: list[str] = []
    try:
        t0 = time.monotonic()
        addr = await _resolve(host, port)
        steps.append(f"DNS {_ms(t0)}")
        t0 = time.monotonic()
        await _tcp(host, addr, port)
        steps.append(f"TCP {_ms(t0)}")
        if secure:
            t0 = time.monotonic()
            await _tls(host, addr, port)
            steps.append(f"TLS {_ms(t0)}")
        session = LiveSession(link, setup_options(ctx.cfg), ctx.cfg.audio.frame_ms,
                              lambda _e: None)
        target, headers = session.target()  # the daemon's URL, key and auth
        if headers is None:
            return Check("endpoint", WARN, f"{shown}: reachable ({', '.join(steps)}); "
                         f"WebSocket not tried: {target}", "see the api key check")
        await _websocket(ctx, target, headers, steps)
    except StepFailed as failed:
        done = f" ({', '.join(steps)})" if steps else ""
        return Check("endpoint", FAIL, f"{shown}: {failed.detail}{done}", failed.hint)
    return Check("endpoint", PASS, f"{shown} ({', '.join(steps)}; model {link.model})")


def check_endpoint(ctx: Context) -> Check:
    return asyncio.run(_endpoint(ctx))
