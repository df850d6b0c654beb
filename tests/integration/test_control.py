"""The control socket of a running daemon: JSON lines in, JSON lines out.

Status has the documented shape; mute really closes the microphone (no frame reaches the
link while muted, the capture thread counts what it discarded); bad requests get an error
reply on a connection that stays usable; the socket is mode 0660.
"""

from __future__ import annotations

import asyncio
import json
import socket as sk
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from live import make_config, wait_for

from pivox import cli
from pivox.control import ControlServer
from pivox.reference.server import ReferenceServer


class Client:
    """One connection to the control socket, kept open across requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: Path) -> Client:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def raw(self, line: bytes) -> dict[str, Any]:
        self.writer.write(line)
        await self.writer.drain()
        return json.loads(await asyncio.wait_for(self.reader.readline(), 5))

    async def send(self, cmd: str, **args: Any) -> dict[str, Any]:
        return await self.raw(json.dumps({"cmd": cmd, **args}).encode() + b"\n")

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def test_status_mute_and_bad_requests(tmp_path: Path, run_daemon) -> None:
    sock = tmp_path / "control.sock"
    seen: dict[str, Any] = {}

    async def during(run) -> None:
        daemon = run.daemon
        assert await wait_for(lambda: sock.exists(), 20)
        seen["mode"] = stat.S_IMODE(sock.stat().st_mode)
        client = await Client.connect(sock)
        try:
            seen["status"] = await client.send("status")

            # Mute in the middle of a conversation: the wake word opens one, audio streams up.
            assert await wait_for(lambda: daemon.m.state.value == "listening"
                                  and daemon.uplink_frames > 10, 25), daemon.m.state
            seen["mute"] = await client.send("mute")
            cap = daemon.capture
            # Let frames in flight settle, then watch a second of muted microphone.
            base = cap.muted_frames
            assert await wait_for(lambda: cap.muted_frames >= base + 5, 5)
            sent, bytes_in = daemon.uplink_frames, server.stats.audio_bytes_in
            muted = cap.muted_frames
            assert await wait_for(lambda: cap.muted_frames >= muted + 50, 10)
            seen["muted_growth"] = cap.muted_frames - muted
            seen["uplink_delta"] = daemon.uplink_frames - sent
            seen["server_delta"] = server.stats.audio_bytes_in - bytes_in
            seen["muted_status"] = await client.send("status")

            seen["unmute"] = await client.send("unmute")
            seen["volume_high"] = await client.send("volume", level=1.5)
            seen["volume_missing"] = await client.send("volume")
            seen["cli_volume_high"] = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "pivox", "volume", "1.5", "--socket",
                                 str(sock)], capture_output=True, text=True, timeout=20)
            seen["volume_ok"] = await client.send("volume", level=0.25)
            seen["volume_now"] = daemon.player.volume
            seen["garbage"] = await client.raw(b"this is not json\n")
            seen["not_object"] = await client.raw(b"[1, 2]\n")
            seen["unknown"] = await client.send("selfdestruct")
            seen["after_errors"] = await client.send("status")  # same connection
        finally:
            await client.close()

    async def main():
        nonlocal server
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url)
            return await run_daemon(cfg, lambda r: "after_errors" in seen, timeout=60,
                                    during=during)
        finally:
            await server.stop()

    server: ReferenceServer
    asyncio.run(main())

    assert seen["mode"] == 0o660
    status = seen["status"]
    assert status["ok"] is True
    assert {"state", "link", "audio", "wake", "uptime_s"} <= status.keys()
    assert isinstance(status["uptime_s"], int | float)
    assert {"connected", "model", "url"} <= status["link"].keys()
    assert {"frames", "overruns", "volume"} <= status["audio"].keys()
    assert status["wake"]["keyword"] == "okay_nabu"

    assert seen["mute"] == {"ok": True, "state": "muted"}
    assert seen["muted_status"]["state"] == "muted" and seen["muted_status"]["muted"] is True
    assert seen["muted_growth"] >= 50  # the microphone kept running, into nothing
    assert seen["uplink_delta"] == 0, "microphone frames were sent while muted"
    assert seen["server_delta"] == 0, "the server received audio while muted"

    assert seen["unmute"] == {"ok": True, "state": "idle"}
    assert seen["volume_high"]["ok"] is False and "0.0 to 1.0" in seen["volume_high"]["error"]
    assert seen["volume_missing"]["ok"] is False
    assert seen["volume_ok"]["ok"] is True and seen["volume_now"] == 0.25
    cli_run = seen["cli_volume_high"]  # the command line says the same, once, and fails
    assert cli_run.returncode == 1 and cli_run.stdout == ""
    assert cli_run.stderr.startswith("pivox: the daemon refused 'volume': ")
    assert cli_run.stderr.count("\n") == 1 and "0.0 to 1.0" in cli_run.stderr
    assert seen["garbage"] == {"ok": False, "error": "expected one JSON object per line"}
    assert seen["not_object"]["ok"] is False
    assert seen["unknown"]["ok"] is False and "unknown command" in seen["unknown"]["error"]
    assert seen["after_errors"]["ok"] is True and seen["after_errors"]["state"] == "idle"


def test_socket_is_removed_when_the_daemon_stops(tmp_path: Path, run_daemon) -> None:
    sock = tmp_path / "control.sock"

    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url)
            return await run_daemon(cfg, lambda r: sock.exists(), timeout=20)
        finally:
            await server.stop()

    asyncio.run(main())
    assert not sock.exists()


def test_peer_credentials_decide_who_may_talk() -> None:
    """The service's own user may talk; a stranger (nobody/nogroup) may not."""
    import os
    import socket as sk
    import time

    import pytest

    from pivox.control import peer_allowed

    a, b = sk.socketpair(sk.AF_UNIX, sk.SOCK_STREAM)
    with a, b:
        assert peer_allowed(a)
    if os.getuid() != 0:
        pytest.skip("needs root to become another user")
    import shutil
    import tempfile

    where = tempfile.mkdtemp(dir="/tmp")  # reachable by another user, unlike pytest's tmp
    os.chmod(where, 0o777)
    path = os.path.join(where, "ctl.sock")
    server = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
    server.settimeout(10)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    pid = os.fork()
    if pid == 0:  # the child becomes a stranger and connects
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            c = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
            c.connect(path)
            time.sleep(0.5)
        finally:
            os._exit(0)
    try:
        conn, _ = server.accept()
        with conn:
            assert not peer_allowed(conn)
    finally:
        server.close()
        os.waitpid(pid, 0)
        shutil.rmtree(where, ignore_errors=True)


class SocketStub:
    """A real unix socket in the shape of each way the CLI can fail to get an answer."""

    def __init__(self, where: Path, kind: str) -> None:
        self.path = where / f"{kind}.sock"
        self._stop = threading.Event()
        self._sock = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
        self._thread: threading.Thread | None = None
        if kind == "missing":
            self._sock.close()
            return
        self._sock.bind(str(self.path))
        if kind == "refused":  # a stale socket file: nothing listens on it any more
            self._sock.close()
            return
        self._sock.listen(4)
        if kind == "error":  # the real server, answering {"ok": false, "error": ...}
            self._thread = threading.Thread(target=self._serve_errors, daemon=True)
            self._thread.start()
        # "silent": connections wait in the backlog, never answered

    def _serve_errors(self) -> None:
        def handle(req: dict[str, Any]) -> dict[str, Any]:
            raise ValueError(f"cannot {req['cmd']} now:\nthe microphone is gone")

        server = ControlServer(str(self.path), handle)
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                line = conn.makefile("rb").readline()
                conn.sendall(json.dumps(server.answer(line)).encode() + b"\n")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()


@pytest.mark.parametrize("kind, why", [
    ("missing", "no control socket"), ("refused", "nothing is listening"),
    ("silent", "did not answer"), ("error", "cannot status now: the microphone is gone")])
def test_control_commands_fail_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             kind: str, why: str) -> None:
    """Each command exits non-zero with one `pivox: ...` line on stderr, and nothing on stdout."""
    stub = SocketStub(tmp_path, kind)
    try:
        commands = [["status", "--json"], ["status"], ["mute"], ["volume", "0.5"]]
        if kind == "silent":  # each waits out the client's timeout: two are enough
            commands = [["status", "--json"], ["talk"]]
        for argv in commands:
            rc = cli.main([*argv, "--socket", str(stub.path)])
            out, err = capsys.readouterr()
            assert rc != 0, (argv, out, err)
            assert out == "", (argv, out)
            assert err.startswith("pivox: ") and err.count("\n") == 1, (argv, err)
            want = why.replace("status", argv[0]) if kind == "error" else why
            assert want in err, (argv, err)
    finally:
        stub.close()
