"""A real Mosquitto on loopback for the MQTT tests: plain, or TLS with a test CA and a
password file; it can be stopped and started again on the same port.

Also a small recording subscriber (aiomqtt) that keeps every message per topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from live import free_port, wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USER, PASSWORD = "speaker", "s3cret-broker-pass-9f2"


def have_mosquitto() -> bool:
    return Path(MOSQUITTO).exists() and shutil.which("mosquitto_passwd") is not None


needs_mosquitto = pytest.mark.skipif(not have_mosquitto(), reason="needs Debian's mosquitto "
                                     "and mosquitto-clients (scripts/bootstrap test)")


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 and localhost: (ca, cert, key)."""
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=pivox test CA", "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
        "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    return d / "ca.crt", d / "server.crt", d / "server.key"


@dataclass
class Broker:
    dir: Path
    tls: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ca: Path | None = None

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false",
                 f"log_dest file {self.dir / 'mosquitto.log'}", "log_type all"]
        if os.geteuid() == 0:  # else it becomes user mosquitto and cannot read this dir
            lines.append("user root")
        if self.tls:
            self.ca, cert, key = make_ca(self.dir)
            pw = self.dir / "passwd"
            pw.write_text("")
            subprocess.run(["mosquitto_passwd", "-b", str(pw), USER, PASSWORD], check=True,
                           capture_output=True)
            pw.chmod(0o600)
            lines += [f"cafile {self.ca}", f"certfile {cert}", f"keyfile {key}",
                      "allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        import socket
        while time.monotonic() < end:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def toml(self, client_id: str = "", extra: str = "") -> str:
        """An [mqtt] table for this broker (and no echo canceller: cheaper, and the
        speaker's own-voice twin is not what these tests are about)."""
        lines = ["[audio.echo]", "enabled = false", "[mqtt]", 'host = "127.0.0.1"',
                 f"port = {self.port}"]
        if client_id:
            lines.append(f'client_id = "{client_id}"')
        if self.tls:
            pw = self.dir / "speaker.pass"
            pw.write_text(PASSWORD + "\n")
            lines += ["tls = true", f'ca_file = "{self.ca}"', f'username = "{USER}"',
                      f'password_file = "{pw}"']
        return "\n".join(lines) + "\n" + extra


@dataclass
class Recorder:
    """Every message on `topics`, per topic, with the time it came."""

    broker: Broker
    topics: tuple[str, ...] = ("#",)
    messages: dict[str, list[tuple[float, bytes, bool]]] = field(
        default_factory=lambda: defaultdict(list))
    client: aiomqtt.Client | None = None
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def last(self, topic: str) -> bytes | None:
        got = self.messages.get(topic)
        return got[-1][1] if got else None

    def count(self, prefix: str, since: float = 0.0) -> int:
        return sum(1 for t, msgs in self.messages.items() if t.startswith(prefix)
                   for at, _, _ in msgs if at >= since)

    async def _run(self) -> None:
        kw: dict[str, Any] = {}
        if self.broker.tls:
            import ssl
            kw = {"username": USER, "password": PASSWORD,
                  "tls_context": ssl.create_default_context(cafile=str(self.broker.ca))}
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.broker.port, **kw) as client:
                    self.client = client
                    for t in self.topics:
                        await client.subscribe(t, qos=1)
                    self._ready.set()
                    async for m in client.messages:
                        raw = m.payload
                        data = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
                        self.messages[str(m.topic)].append((time.monotonic(), data, m.retain))
            except aiomqtt.MqttError:
                self.client = None
                await asyncio.sleep(0.2)

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._run())
        assert await wait_for(self._ready.is_set, 10), "recorder did not connect"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        assert await wait_for(lambda: self.client is not None, 10)
        assert self.client is not None
        await self.client.publish(topic, payload, qos=1, retain=retain)
