"""Reaching the Gemini Live endpoint: the URL and credentials, the websocket handshake, the
offline probe, and short, secret-free words for what went wrong. The one place that dials:
the session and `pivox diag` both connect through here.
"""

from __future__ import annotations

import asyncio
import urllib.parse

import websockets
from websockets.asyncio.client import connect

from pivox.config import LinkConfig, is_loopback
from pivox.secrets import RedactingLogger, read_api_key

MAX_FRAME = 16 * 1024 * 1024


def loopback_url(url: str) -> bool:
    return is_loopback(urllib.parse.urlsplit(url).hostname or "")


def endpoint(url: str) -> tuple[str, int]:
    """Host and TCP port of a ws:// or wss:// URL."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "wss" else 80)


def target(cfg: LinkConfig) -> tuple[str, dict[str, str]] | tuple[str, None]:
    """The URL and headers for the next connection, or an error text and None."""
    url = cfg.url
    if url.startswith("ws://") and not loopback_url(url) and not cfg.allow_insecure:
        return "refusing unencrypted ws:// to a non-loopback host", None
    key = read_api_key(cfg)
    if not key:
        if loopback_url(url):
            return url, {}
        return f"no API key: set ${cfg.api_key_env} or [link] api_key_file", None
    if cfg.auth == "token":  # an ephemeral token, on the constrained method
        if not url.split("?")[0].endswith("Constrained"):
            url = url.replace("BidiGenerateContent", "BidiGenerateContentConstrained", 1)
        return url, {"Authorization": f"Token {key}"}
    return url, {"x-goog-api-key": key}


def open_ws(cfg: LinkConfig, url: str, headers: dict[str, str], logger: RedactingLogger,
            ) -> connect:
    """The websocket handshake, to be awaited. Pings keep NATs open; their answers are
    never required (Gemini's pongs can take 8-30 s; liveness is the policy's)."""
    return connect(url, additional_headers=headers, open_timeout=cfg.connect_timeout_s,
                   ping_interval=cfg.keepalive_s, ping_timeout=None, close_timeout=2,
                   max_size=MAX_FRAME, compression=None, logger=logger)


async def probe(url: str) -> bool:
    """Does anything accept a TCP connection at the endpoint? (No TLS, no key sent.)"""
    host, port = endpoint(url)
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.transport.abort()
    return True


def describe(exc: BaseException) -> str:
    """Short, secret-free text for a connection failure."""
    if isinstance(exc, websockets.InvalidStatus):
        return f"server refused the connection (HTTP {exc.response.status_code})"
    if isinstance(exc, TimeoutError):
        return "connect timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
