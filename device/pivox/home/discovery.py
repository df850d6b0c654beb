"""What Home Assistant sees: discovery configs, the state payload and the command topics.

Pure: no broker, no clock, no files. The adapter (`home/mqtt.py`) passes in the status
dict the control socket serves, the resident memory and the version, and publishes what
comes back. Home Assistant's MQTT discovery: one retained config per entity under
`<discovery_prefix>/<component>/<node>/<key>/config`, all of them naming one device, all
reading one JSON state topic through `value_template`, so a state change is one message.
Availability is the retained `<base>/<node>/availability` ("online", and "offline" as the
last will); commands arrive on `<base>/<node>/cmd/<name>` and answers go to
`<base>/<node>/reply`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

MODEL = "Pivox speaker"
MANUFACTURER = "Pivox"
MAX_PAYLOAD = 1024  # bytes: the longest command a speaker reads
MAX_ANNOUNCE = 255  # characters: Home Assistant's own limit for a text entity
CONVERSATION = ("listening", "thinking", "speaking")


def node_id(client_id: str, machine_id: str) -> str:
    """The speaker's stable id: the configured client id, else a hash of the machine id
    (systemd asks applications not to publish the machine id itself)."""
    if client_id:
        return client_id
    digest = hashlib.sha256(f"pivox:{machine_id.strip()}".encode()).hexdigest()
    return f"pivox_{digest[:12]}"


@dataclass(frozen=True)
class Topics:
    base: str
    node: str
    discovery: str = "homeassistant"

    @property
    def root(self) -> str:
        return f"{self.base}/{self.node}"

    @property
    def availability(self) -> str:
        return f"{self.root}/availability"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def reply(self) -> str:
        return f"{self.root}/reply"

    @property
    def commands(self) -> str:
        return f"{self.root}/cmd/#"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth and last will: "online" means discovery is wanted again."""
        return f"{self.discovery}/status"

    def cmd(self, name: str) -> str:
        return f"{self.root}/cmd/{name}"

    def config(self, component: str, key: str) -> str:
        return f"{self.discovery}/{component}/{self.node}/{key}/config"

    def command_name(self, topic: str) -> str | None:
        """`cmd/<name>` of this speaker -> name; any other topic -> None."""
        prefix = f"{self.root}/cmd/"
        return topic[len(prefix):] if topic.startswith(prefix) else None


@dataclass(frozen=True)
class Entity:
    component: str
    key: str
    name: str
    options: dict[str, Any]


def _value(field: str) -> str:
    return "{{ value_json." + field + " }}"


DIAGNOSTIC = {"entity_category": "diagnostic"}


def entities(t: Topics) -> tuple[Entity, ...]:
    """Every entity a speaker shows, in the order Home Assistant lists them."""
    sensor = {"state_topic": t.state}

    def reading(field: str, **extra: Any) -> dict[str, Any]:
        return {**sensor, "value_template": _value(field), **extra}

    return (
        Entity("sensor", "state", "State", reading("state", icon="mdi:speaker-message")),
        Entity("sensor", "link", "Link", reading("link", icon="mdi:cloud-outline")),
        Entity("sensor", "last_error", "Last error", {
            **sensor, "value_template": "{{ value_json.last_error or 'none' }}",
            "icon": "mdi:alert-circle-outline", **DIAGNOSTIC}),
        Entity("sensor", "wake_word", "Wake word", reading("wake_word", icon="mdi:account-voice",
                                                           **DIAGNOSTIC)),
        Entity("sensor", "uptime", "Uptime", reading(
            "uptime_s", device_class="duration", unit_of_measurement="s",
            state_class="measurement", **DIAGNOSTIC)),
        Entity("sensor", "xruns", "Audio xruns", reading(
            "xruns", state_class="total_increasing", icon="mdi:waveform", **DIAGNOSTIC)),
        Entity("sensor", "reconnects", "Link reconnects", reading(
            "reconnects", state_class="total_increasing", icon="mdi:cloud-refresh",
            **DIAGNOSTIC)),
        Entity("sensor", "memory", "Resident memory", reading(
            "rss_mib", device_class="data_size", unit_of_measurement="MiB",
            state_class="measurement", **DIAGNOSTIC)),
        Entity("sensor", "timers", "Timers", {
            **sensor, "value_template": "{{ value_json.timers | count }}",
            "json_attributes_topic": t.state,
            "json_attributes_template": "{{ {'timers': value_json.timers} | tojson }}",
            "icon": "mdi:timer-outline"}),
        Entity("switch", "mute", "Mute", {
            "command_topic": t.cmd("mute"), "state_topic": t.state,
            "value_template": _value("muted"), "payload_on": "ON", "payload_off": "OFF",
            "icon": "mdi:microphone-off"}),
        Entity("number", "volume", "Volume", {
            "command_topic": t.cmd("volume"), "state_topic": t.state,
            "value_template": _value("volume"), "min": 0, "max": 100, "step": 1,
            "unit_of_measurement": "%", "mode": "slider", "icon": "mdi:volume-high"}),
        Entity("button", "talk", "Talk", {"command_topic": t.cmd("talk"),
                                          "payload_press": "PRESS", "icon": "mdi:microphone"}),
        Entity("button", "stop", "Stop", {"command_topic": t.cmd("stop"),
                                          "payload_press": "PRESS", "icon": "mdi:stop"}),
        Entity("text", "announce", "Announce", {
            "command_topic": t.cmd("announce"), "min": 1, "max": MAX_ANNOUNCE,
            "mode": "text", "icon": "mdi:bullhorn"}),
    )


def device(node: str, name: str, version: str) -> dict[str, Any]:
    return {"identifiers": [node], "name": name, "manufacturer": MANUFACTURER,
            "model": MODEL, "sw_version": version}


def configs(t: Topics, name: str, version: str) -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload, for every entity (publish retained)."""
    dev = device(t.node, name, version)
    out: dict[str, dict[str, Any]] = {}
    for e in entities(t):
        out[t.config(e.component, e.key)] = {
            "name": e.name, "unique_id": f"{t.node}_{e.key}", "availability_topic":
            t.availability, "payload_available": "online", "payload_not_available": "offline",
            **e.options, "device": dev, "origin": {"name": "pivox", "sw_version": version}}
    return out


def state_payload(status: dict[str, Any], rss_bytes: int, version: str) -> dict[str, Any]:
    """The one JSON state every entity reads, from `pivox status`'s dict."""
    link, audio, wake = status["link"], status["audio"], status["wake"]
    return {
        "state": status["state"],
        "muted": "ON" if status["muted"] else "OFF",
        "volume": round(float(audio["volume"]) * 100),
        "link": "connected" if link["connected"] else "disconnected",
        "last_error": link["last_error"] or "",
        "wake_word": wake["keyword"],
        "uptime_s": int(status["uptime_s"]),
        "xruns": int(audio["underruns"]) + int(audio["overruns"]),
        "reconnects": max(0, int(link["connects"]) - 1),
        "rss_mib": round(rss_bytes / 2**20, 1),
        "healthy": bool(status["health"]["healthy"]),
        "timers": list(status.get("timers", [])),
        "version": version,
    }


VOLATILE = ("uptime_s", "rss_mib")  # change all the time: sent with the periodic refresh


def changed(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether `after` says anything new, leaving out what only ticks."""
    if before is None:
        return True
    return any(before.get(k) != v for k, v in after.items() if k not in VOLATILE)


class NotYet(ValueError):
    """A command whose feature has not arrived on this speaker yet."""


def _word(text: str, words: dict[str, str], what: str) -> str:
    key = text.strip().upper()
    if key not in words:
        raise ValueError(f"{what}: expected {' or '.join(words)}")
    return words[key]


def request(name: str, payload: bytes) -> dict[str, Any]:
    """A command topic's payload -> the control socket's request. Raises KeyError for an
    unknown command, ValueError (and NotYet) for a payload it cannot take."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload over {MAX_PAYLOAD} bytes")
    text = payload.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if name == "mute":
        return {"cmd": _word(text, {"ON": "mute", "OFF": "unmute", "TOGGLE": "toggle_mute"},
                             "mute")}
    if name == "volume":
        try:
            percent = float(text)
        except ValueError:
            raise ValueError("volume: expected a number from 0 to 100") from None
        if not math.isfinite(percent) or not 0 <= percent <= 100:
            raise ValueError("volume: expected a number from 0 to 100")
        return {"cmd": "volume", "level": round(percent / 100, 3)}
    if name in ("talk", "stop"):
        _word(text or "PRESS", {"PRESS": name}, name)
        return {"cmd": name}
    if name == "status":
        return {"cmd": "status"}
    if name == "announce":
        if not text.strip() or len(text) > MAX_ANNOUNCE:
            raise ValueError(f"announce: expected 1 to {MAX_ANNOUNCE} characters")
        raise NotYet("announcements of a text arrive with a later feature; "
                      "nothing was said")
    raise KeyError(f"unknown command {name!r}: try mute, volume, talk, stop, status, announce")
