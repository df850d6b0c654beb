"""The control socket: JSON lines over a unix socket, for `pivox status` and the buttons' CLI.

One request per line, one reply per line. Replies never carry secrets (status is built
from counters and names only). The socket is created mode 0660, group `pivox`, so that
members of the service's group can use it; peer credentials are checked as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_LINE = 4096

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    def __init__(self, path: str, handle: Handler) -> None:
        self.path = Path(path)
        self._handle = handle
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._client, path=str(self.path),
                                                       limit=MAX_LINE)
        os.chmod(self.path, 0o660)
        with contextlib.suppress(KeyError, PermissionError):  # the service's group, if any
            os.chown(self.path, -1, grp.getgrnam("pivox").gr_gid)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not peer_allowed(writer.get_extra_info("socket")):
            writer.write(json.dumps({"ok": False, "error": "permission denied"}).encode()
                         + b"\n")
            writer.close()
            return
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self.answer(line)).encode() + b"\n")
                await writer.drain()
        except (ValueError, ConnectionError):  # over-long line, or the peer went away
            pass
        finally:
            writer.close()

    def answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return {"ok": False, "error": "expected one JSON object per line"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'expected {"cmd": "..."}'}
        try:
            return {"ok": True, **self._handle(request)}
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            return {"ok": False, "error": str(exc)[:200]}


SO_PEERGROUPS = 59  # Linux 4.13+; not named in Python's socket module
MAX_PEER_GROUPS = 256  # Python caps getsockopt's buffer at 1024 bytes of 32-bit gids


def peer_groups(sock: socket.socket) -> tuple[int, ...]:
    """The peer's supplementary groups, from the socket itself.

    Not from /proc/PID/status: the unit's ProtectProc=invisible hides other users' processes
    from the service. A peer in more than MAX_PEER_GROUPS groups raises OSError (ERANGE).
    """
    raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * MAX_PEER_GROUPS)
    return struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4])


def peer_allowed(sock: socket.socket | None) -> bool:
    """The file mode already keeps strangers out; this double-checks who connected (root,
    the service's own user, or a member of its group), in case the mode was loosened."""
    if sock is None:
        return False
    try:
        _pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET,
                                                             socket.SO_PEERCRED, 12))
        if uid in (0, os.getuid()) or gid == os.getgid():
            return True
        return os.getgid() in peer_groups(sock)
    except OSError:
        return False


def request(path: str, cmd: str, timeout: float = 3.0, **args: Any) -> dict[str, Any]:
    """Client side, blocking: send one command, return the reply. Raises OSError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply = json.loads(buf)
    if not isinstance(reply, dict):
        raise ValueError("the daemon's answer is not a JSON object")
    return reply
