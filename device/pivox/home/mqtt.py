"""The broker adapter: a speaker as a Home Assistant device, and its commands.

A supervised task on the daemon's loop that never touches audio. The daemon's state goes
into a bounded outbox (`home/outbox.py`, latest state per topic wins) and one sender task
drains it, so a slow or absent broker only ever costs dropped state updates, counted; the
loop and the audio threads never wait for it. Connection loss: reconnect with full-jitter
backoff (reset only after a connection stayed up `STABLE_S`), then everything is sent
again: availability, every discovery config, the state. Commands on `cmd/<name>` become
the control socket's requests and go through the same `Commands.handle`; what cannot be
done is answered on `reply` and logged in one line that names the topic, never the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from pivox import __version__
from pivox.home import discovery as dc
from pivox.home.outbox import Message, MqttSnapshot, Outbox, backoff_s
from pivox.home.settings import MqttConfig
from pivox.secrets import read_secret_file

log = logging.getLogger("pivox.mqtt")
MACHINE_ID = Path("/etc/machine-id")
KEEPALIVE_S = 30  # the broker sends the last will after 1.5 of these without a word
CHECK_S = 1.0  # how often the status is compared with what was last published
REFRESH_S = 60.0  # uptime and memory go out this often, or with any other change
STABLE_S = 10.0  # a connection this long resets the backoff
REJECTS_LOGGED_PER_MIN = 10  # a flood of bad commands must not flood the journal

Status = Callable[[], dict[str, Any]]
Command = Callable[[dict[str, Any]], dict[str, Any]]


def connect_options(cfg: MqttConfig) -> dict[str, Any]:
    """aiomqtt.Client's keyword arguments for the broker (blocking: reads files; call it in
    a worker thread). Raises OSError (ssl.SSLError is one) naming a file, never a secret."""
    kw: dict[str, Any] = {"hostname": cfg.host, "port": cfg.broker_port}
    if cfg.username:
        kw["username"] = cfg.username
    if cfg.password_file:
        password, problem = read_secret_file(Path(cfg.password_file))
        if not password:
            raise OSError(problem or f"password_file {cfg.password_file} does not exist")
        kw["password"] = password
    if cfg.tls:
        ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        kw["tls_context"] = ctx
    return kw


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def describe(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


class MqttBridge:
    def __init__(self, cfg: MqttConfig, status: Status, command: Command, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None, machine_id: str | None = None) -> None:
        self.cfg = cfg
        self._status = status
        self._command = command
        self._clock = clock
        self._wall = wall
        self._rng = rng or random.Random()
        if machine_id is None and not cfg.client_id:
            try:
                machine_id = MACHINE_ID.read_text()
            except OSError:
                machine_id = socket.gethostname()
        self.node = dc.node_id(cfg.client_id, machine_id or "")
        self.topics = dc.Topics(cfg.base_topic, self.node, cfg.discovery_prefix)
        self.name = cfg.client_id or socket.gethostname() or self.node
        self.outbox = Outbox()
        self._ready: asyncio.Event | None = None  # the outbox has something
        self._dirty: asyncio.Event | None = None  # the status may have changed
        self._last: dict[str, Any] | None = None
        self._last_at = -REFRESH_S
        self._connected = False
        self._published = self._connects = self._commands = self._rejected = 0
        self._last_error = ""
        self._rejects_logged: list[float] = []

    # ---------------------------------------------------------------- daemon side

    def observe(self, kind: str, _data: dict[str, Any]) -> None:
        """A daemon observer: a state change is published at once, not at the next check."""
        if kind == "state" and self._dirty is not None:
            self._dirty.set()

    def snapshot(self) -> MqttSnapshot:
        return MqttSnapshot(self._connected, f"{self.cfg.host}:{self.cfg.broker_port}",
                            self.node, self._published, self.outbox.dropped, len(self.outbox),
                            self._connects, max(0, self._connects - 1), self._commands,
                            self._rejected, self._last_error)

    def answer(self, topic: str, payload: bytes) -> dict[str, Any]:
        """One command message -> the reply (loop thread). Never raises for a payload."""
        name = self.topics.command_name(topic) or ""
        try:
            req = dc.request(name, payload)
            result = self._command(req)
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            self._rejected += 1
            error = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)[:200]
            self._log_reject(name, error)
            return {"cmd": name[:64], "ok": False, "error": error}
        self._commands += 1
        if self._dirty is not None:
            self._dirty.set()  # a volume has no state event of its own
        if req["cmd"] == "status":
            return {"cmd": name, "ok": True, "status": result}
        return {"cmd": name, "ok": True, "state": result.get("state", "")}

    def _log_reject(self, name: str, error: str) -> None:
        now = self._clock()
        self._rejects_logged = [t for t in self._rejects_logged if now - t < 60.0]
        if len(self._rejects_logged) < REJECTS_LOGGED_PER_MIN:
            self._rejects_logged.append(now)
            log.warning("mqtt: refused command %r: %s", name[:64], error)

    # ---------------------------------------------------------------- what goes out

    def _put(self, topic: str, payload: dict[str, Any] | str, *, retain: bool = False,
             qos: int = 0, latest_wins: bool = True) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(
            payload, separators=(",", ":")).encode()
        self.outbox.put(Message(topic, data, retain, qos), latest_wins=latest_wins)
        if self._ready is not None:
            self._ready.set()

    def _queue_all(self) -> None:
        """Everything Home Assistant needs, as after a fresh start of either side."""
        self._put(self.topics.availability, "online", retain=True, qos=1)
        for topic, config in dc.configs(self.topics, self.name, __version__).items():
            self._put(topic, config, retain=True, qos=1)
        self._queue_state(force=True)

    def _queue_state(self, force: bool = False) -> None:
        now = self._clock()
        state = dc.state_payload(self._status(), resident_bytes(), __version__)
        if force or dc.changed(self._last, state) or now - self._last_at >= REFRESH_S:
            self._last, self._last_at = state, now
            self._put(self.topics.state, {**state, "at": round(self._wall(), 1)}, retain=True)

    # ---------------------------------------------------------------- the connection

    async def run(self) -> None:
        """Until cancelled: connect, serve, and after any loss wait and connect again."""
        self._ready, self._dirty = asyncio.Event(), asyncio.Event()
        attempt, down_since = 0, self._clock()
        while True:
            up_at = None
            try:
                options = await asyncio.to_thread(connect_options, self.cfg)
                async with aiomqtt.Client(
                        **options, identifier=self.node, keepalive=KEEPALIVE_S, timeout=10,
                        logger=logging.getLogger("pivox.mqtt.client"),
                        will=aiomqtt.Will(self.topics.availability, "offline", 1, True)
                ) as client:
                    up_at = self._clock()
                    self._connected, self._connects = True, self._connects + 1
                    log.info("mqtt: connected to %s:%d as %s%s", self.cfg.host,
                             self.cfg.broker_port, self.node, "" if self._connects == 1
                             else f" after {up_at - down_since:.1f} s")
                    await self._serve(client)
            except (aiomqtt.MqttError, OSError) as exc:
                why = describe(exc)
            finally:
                self._connected = False
            now = self._clock()
            if up_at is not None:
                down_since = now
                attempt = 0 if now - up_at >= STABLE_S else attempt
            delay = backoff_s(attempt, self._rng)
            attempt += 1
            if why != self._last_error or up_at is not None:
                log.warning("mqtt: %s %s:%d: %s; retrying in %.1f s",
                            "lost" if up_at is not None else "cannot reach", self.cfg.host,
                            self.cfg.broker_port, why, delay)
            self._last_error = why
            await asyncio.sleep(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topics.commands, qos=1)
        await client.subscribe(self.topics.ha_status, qos=1)
        self.outbox.clear()
        self._queue_all()
        tasks = [asyncio.create_task(self._send(client), name="mqtt-send"),
                 asyncio.create_task(self._refresh(), name="mqtt-refresh"),
                 asyncio.create_task(self._receive(client), name="mqtt-receive")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the MqttError that ended the session
            raise aiomqtt.MqttError("session ended")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # a clean stop sends no last will
                await asyncio.wait_for(client.publish(
                    self.topics.availability, "offline", qos=1, retain=True), 1.0)
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, client: aiomqtt.Client) -> None:
        assert self._ready is not None
        while True:
            msg = self.outbox.take()
            if msg is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            await client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            self._published += 1

    async def _refresh(self) -> None:
        assert self._dirty is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), CHECK_S)
            self._dirty.clear()
            self._queue_state()

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else \
                b"" if raw is None else str(raw).encode()
            if topic == self.topics.ha_status:
                if payload.strip() == b"online":
                    log.info("mqtt: Home Assistant is online; sending discovery again")
                    self._queue_all()
                continue
            self._put(self.topics.reply, self.answer(topic, payload), latest_wins=False)
