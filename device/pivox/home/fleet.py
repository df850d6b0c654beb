"""`pivox fleet`: every speaker on a broker, from what they publish.

Each speaker keeps its state and availability retained under `<base>/<node>/`, so one
subscription to `<base>/+/state` and `<base>/+/availability` lists them all at once,
including the ones that are off (their last will said "offline"). `merge` and `rows` are
pure; `watch` is the thin subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiomqtt

from pivox.home.mqtt import connect_options
from pivox.home.settings import MqttConfig


@dataclass
class Speaker:
    node: str
    online: bool | None = None  # None: no availability seen
    state: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0  # wall-clock seconds


def merge(speakers: dict[str, Speaker], base: str, topic: str, payload: bytes,
          now: float) -> bool:
    """Fold one message in; whether it was a speaker's (the listing may have changed)."""
    prefix = f"{base}/"
    if not topic.startswith(prefix):
        return False
    node, _, leaf = topic[len(prefix):].partition("/")
    if not node or leaf not in ("state", "availability"):
        return False
    sp = speakers.setdefault(node, Speaker(node))
    if leaf == "availability":
        sp.online = payload.strip() == b"online"
        return True
    try:
        state = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return True
    if isinstance(state, dict):
        sp.state = state
        at = state.get("at")
        sp.last_seen = max(sp.last_seen, float(at) if isinstance(at, int | float) else now)
    return True


def rows(speakers: dict[str, Speaker], now: float) -> list[dict[str, Any]]:
    out = []
    for node in sorted(speakers):
        sp, st = speakers[node], speakers[node].state
        out.append({
            "id": node, "online": sp.online, "state": st.get("state"),
            "version": st.get("version"), "link": st.get("link"),
            "last_error": st.get("last_error") or "", "muted": st.get("muted") == "ON",
            "volume": st.get("volume"),
            "last_seen": datetime.fromtimestamp(sp.last_seen, UTC).isoformat(
                timespec="seconds") if sp.last_seen else None,
            "seen_s_ago": round(now - sp.last_seen, 1) if sp.last_seen else None,
        })
    return out


def table(listing: list[dict[str, Any]]) -> str:
    head = ("SPEAKER", "ONLINE", "STATE", "VERSION", "LINK", "LAST SEEN", "LAST ERROR")
    lines = [head]
    for r in listing:
        ago = r["seen_s_ago"]
        lines.append((r["id"], {True: "yes", False: "no", None: "?"}[r["online"]],
                      r["state"] or "-", r["version"] or "-", r["link"] or "-",
                      f"{ago:.0f} s ago" if ago is not None else "-",
                      (r["last_error"] or "")[:60]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    return "\n".join(text) + f"\n{len(listing)} speaker(s)"


async def watch(cfg: MqttConfig, show: Callable[[list[dict[str, Any]]], None], *,
                settle_s: float = 1.5, forever: bool = False,
                wall: Callable[[], float] = time.time) -> int:
    """Subscribe and call `show` with the listing: once after the retained messages have
    settled (`settle_s` without a new speaker message), or, `forever`, on every change
    (at most once a second). Returns how many speakers were listed last."""
    options = await asyncio.to_thread(connect_options, cfg)
    speakers: dict[str, Speaker] = {}
    base = cfg.base_topic
    async with aiomqtt.Client(**options, identifier=f"pivox-fleet-{os.getpid()}",
                              timeout=10) as client:
        await client.subscribe(f"{base}/+/state", qos=1)
        await client.subscribe(f"{base}/+/availability", qos=1)
        messages = client.messages
        last_shown = time.monotonic()  # the first listing waits for the retained burst
        dirty = False
        while True:
            try:
                async with asyncio.timeout(settle_s if not forever else 1.0):
                    msg = await anext(messages)
            except TimeoutError:
                if dirty or not forever:
                    show(rows(speakers, wall()))
                    last_shown, dirty = time.monotonic(), False
                if not forever:
                    return len(speakers)
                continue
            raw = msg.payload
            data = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
            if merge(speakers, base, str(msg.topic), data, wall()):
                dirty = True
            if forever and dirty and time.monotonic() - last_shown >= 1.0:
                show(rows(speakers, wall()))
                last_shown, dirty = time.monotonic(), False


def run(cfg: MqttConfig, as_json: bool, forever: bool, settle_s: float = 1.5) -> int:
    """The command: 0 after a listing, 1 when the broker cannot be reached."""
    def show(listing: list[dict[str, Any]]) -> None:
        if as_json:
            print(json.dumps({"broker": f"{cfg.host}:{cfg.broker_port}",
                              "speakers": listing}, indent=None if forever else 2),
                  flush=True)
        else:
            print(("\x1b[2J\x1b[H" if forever and os.isatty(1) else "") + table(listing),
                  flush=True)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(watch(cfg, show, settle_s=settle_s, forever=forever))
    except (aiomqtt.MqttError, OSError) as exc:
        print(f"pivox: cannot list the fleet on {cfg.host}:{cfg.broker_port}: "
              f"{' '.join(str(exc).split())[:200]}", flush=True, file=sys.stderr)
        return 1
    return 0
