"""Home Assistant discovery payloads against the documented schema, the state payload, the
command parsing, the outbox, the backoff and the [mqtt] config rules.

The schema table below is taken from Home Assistant's documentation, one page per
component (the "Configuration Variables" of each):
  https://www.home-assistant.io/integrations/mqtt/           (discovery, device, origin)
  https://www.home-assistant.io/integrations/sensor.mqtt/
  https://www.home-assistant.io/integrations/switch.mqtt/
  https://www.home-assistant.io/integrations/number.mqtt/
  https://www.home-assistant.io/integrations/button.mqtt/
  https://www.home-assistant.io/integrations/text.mqtt/
Keys every MQTT entity takes (availability, device, entity category, icon, JSON
attributes, name, origin, qos, unique_id ...) are listed once as COMMON.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from pivox import __version__, config
from pivox.home import discovery as dc
from pivox.home.outbox import CAP_S, Message, Outbox, backoff_s

COMMON = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "payload_available", "payload_not_available", "device", "enabled_by_default",
    "encoding", "entity_category", "entity_picture", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "object_id", "default_entity_id", "origin", "qos",
    "unique_id", "platform",
}
SCHEMA: dict[str, dict[str, set[str]]] = {
    "sensor": {"required": {"state_topic"}, "allowed": {
        "device_class", "expire_after", "force_update", "last_reset_value_template",
        "options", "suggested_display_precision", "state_class", "unit_of_measurement",
        "value_template"}},
    "switch": {"required": {"command_topic"}, "allowed": {
        "command_template", "device_class", "optimistic", "payload_off", "payload_on",
        "retain", "state_off", "state_on", "state_topic", "value_template"}},
    "number": {"required": {"command_topic"}, "allowed": {
        "command_template", "device_class", "max", "min", "mode", "optimistic",
        "payload_reset", "retain", "state_topic", "step", "unit_of_measurement",
        "value_template"}},
    "button": {"required": {"command_topic"}, "allowed": {
        "command_template", "device_class", "payload_press", "retain"}},
    "text": {"required": {"command_topic"}, "allowed": {
        "command_template", "max", "min", "mode", "pattern", "retain", "state_topic",
        "value_template"}},
}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers",
               "manufacturer", "model", "model_id", "name", "serial_number",
               "suggested_area", "sw_version", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
UNITS = {"duration": {"d", "h", "min", "s", "ms"},
         "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "KiB",
                       "MiB", "GiB", "TiB"}}
TOPIC = re.compile(r"[^#+\s]+")  # a topic we publish to or HA subscribes to: no wildcards
CONFIG_TOPIC = re.compile(r"homeassistant/(sensor|switch|number|button|text)/"
                          r"[A-Za-z0-9_-]+/[A-Za-z0-9_-]+/config")

TOPICS = dc.Topics("pivox", "kitchen", "homeassistant")
CONFIGS = dc.configs(TOPICS, "Kitchen", __version__)


def component(topic: str) -> str:
    return topic.split("/")[1]


@pytest.mark.parametrize("topic", sorted(CONFIGS))
def test_every_payload_matches_its_components_schema(topic: str) -> None:
    payload = CONFIGS[topic]
    assert CONFIG_TOPIC.fullmatch(topic), topic
    schema = SCHEMA[component(topic)]
    keys = set(payload)
    assert schema["required"] <= keys, f"{topic}: missing {schema['required'] - keys}"
    unknown = keys - schema["required"] - schema["allowed"] - COMMON
    assert not unknown, f"{topic}: keys not in the documented schema: {unknown}"
    assert "availability" not in payload or "availability_topic" not in payload
    for key in keys:
        if key.endswith("_topic"):
            assert TOPIC.fullmatch(payload[key]), (key, payload[key])
    assert set(payload["device"]) <= DEVICE_KEYS
    assert payload["device"]["identifiers"] and payload["device"]["name"]
    assert set(payload["origin"]) <= ORIGIN_KEYS and payload["origin"]["name"]
    assert payload.get("entity_category", "diagnostic") in ENTITY_CATEGORIES
    assert payload.get("state_class", "measurement") in STATE_CLASSES
    if payload.get("device_class") in UNITS:
        assert payload["unit_of_measurement"] in UNITS[payload["device_class"]]
    if component(topic) == "number":
        assert payload["min"] < payload["max"] and payload["step"] > 0
        assert payload.get("mode", "auto") in {"auto", "box", "slider"}
    if component(topic) == "text":
        assert 0 <= payload["min"] <= payload["max"] <= 255
        assert payload.get("mode", "text") in {"text", "password"}
    json.dumps(payload)


def test_one_device_every_entity_unique_and_commands_routed() -> None:
    devices = {json.dumps(p["device"], sort_keys=True) for p in CONFIGS.values()}
    assert len(devices) == 1
    assert len({p["unique_id"] for p in CONFIGS.values()}) == len(CONFIGS) == 14
    assert sorted(component(t) for t in CONFIGS).count("sensor") == 9
    for p in CONFIGS.values():
        assert p["availability_topic"] == "pivox/kitchen/availability"
        if "command_topic" in p:
            name = TOPICS.command_name(p["command_topic"])
            assert name in ("mute", "volume", "talk", "stop", "announce")
    assert CONFIGS["homeassistant/sensor/kitchen/state/config"]["device"] == {
        "identifiers": ["kitchen"], "name": "Kitchen", "manufacturer": "Pivox",
        "model": "Pivox speaker", "sw_version": __version__}


def status(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "state": "idle", "muted": False, "uptime_s": 12.7,
        "health": {"healthy": True},
        "link": {"connected": True, "last_error": "", "connects": 3},
        "audio": {"volume": 0.35, "underruns": 2, "overruns": 1},
        "wake": {"keyword": "okay_nabu"},
    }
    s.update(over)
    return s


def render(template: str, value: dict[str, Any]) -> Any:
    """The templates we use are `{{ value_json.FIELD }}` and two fixed forms."""
    if m := re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", template):
        return value[m.group(1)]
    if template == "{{ value_json.last_error or 'none' }}":
        return value["last_error"] or "none"
    if template == "{{ value_json.timers | count }}":
        return len(value["timers"])
    raise AssertionError(f"unexpected template {template}")


def test_state_payload_feeds_every_entity() -> None:
    value = dc.state_payload(status(), 50 * 2**20, "9.9")
    assert value == {"state": "idle", "muted": "OFF", "volume": 35, "link": "connected",
                     "last_error": "", "wake_word": "okay_nabu", "uptime_s": 12, "xruns": 3,
                     "reconnects": 2, "rss_mib": 50.0, "healthy": True, "timers": [],
                     "version": "9.9"}
    for p in CONFIGS.values():
        if "value_template" in p:
            render(p["value_template"], value)
    switch = CONFIGS["homeassistant/switch/kitchen/mute/config"]
    muted = dc.state_payload(status(muted=True), 0, "9.9")
    assert render(switch["value_template"], muted) == switch["payload_on"]


def test_only_real_changes_count() -> None:
    a = dc.state_payload(status(), 1, "v")
    assert dc.changed(None, a)
    assert not dc.changed(a, dc.state_payload(status(uptime_s=99.0), 2**30, "v"))
    assert dc.changed(a, dc.state_payload(status(state="listening"), 1, "v"))


@pytest.mark.parametrize(("name", "payload", "want"), [
    ("mute", b"ON", {"cmd": "mute"}), ("mute", b"off", {"cmd": "unmute"}),
    ("mute", b" TOGGLE\n", {"cmd": "toggle_mute"}), ("volume", b"35", {"cmd": "volume",
                                                                         "level": 0.35}),
    ("volume", b"100", {"cmd": "volume", "level": 1.0}), ("talk", b"PRESS", {"cmd": "talk"}),
    ("talk", b"", {"cmd": "talk"}), ("stop", b"PRESS", {"cmd": "stop"}),
    ("status", b"", {"cmd": "status"}),
])
def test_commands(name: str, payload: bytes, want: dict[str, Any]) -> None:
    assert dc.request(name, payload) == want


@pytest.mark.parametrize(("name", "payload", "error"), [
    ("volume", b"nan", ValueError), ("volume", b"inf", ValueError), ("volume", b"101",
                                                                     ValueError),
    ("volume", b"-0.5", ValueError), ("volume", b"loud", ValueError),
    ("mute", b"maybe", ValueError), ("talk", b"\xff", ValueError), ("talk", b"HOLD", ValueError),
    ("volume", b"1" * 2000, ValueError), ("reboot", b"", KeyError), ("", b"", KeyError),
    ("announce", b"", ValueError), ("announce", b"dinner", dc.NotYet),
])
def test_bad_commands_raise_what_the_control_socket_answers(name: str, payload: bytes,
                                                            error: type) -> None:
    with pytest.raises(error):
        dc.request(name, payload)


def test_node_id_is_stable_and_does_not_reveal_the_machine_id() -> None:
    mid = "0123456789abcdef0123456789abcdef\n"
    assert dc.node_id("", mid) == dc.node_id("", mid.strip())
    assert dc.node_id("", mid).startswith("pivox_") and "0123456789" not in dc.node_id("", mid)
    assert dc.node_id("", mid) != dc.node_id("", "f" * 32)
    assert dc.node_id("porch", mid) == "porch"
    assert TOPICS.command_name("pivox/kitchen/cmd/mute") == "mute"
    assert TOPICS.command_name("pivox/other/cmd/mute") is None


def test_outbox_latest_state_wins_and_drops_are_counted() -> None:
    box = Outbox(limit=3)
    box.put(Message("a", b"1"))
    box.put(Message("a", b"2"))  # supersedes
    box.put(Message("r", b"x"), latest_wins=False)
    box.put(Message("r", b"y"), latest_wins=False)
    assert box.dropped == 1 and len(box) == 3
    box.put(Message("b", b"3"))  # full: the oldest goes
    assert box.dropped == 2
    assert [m.payload for m in iter(box.take, None)] == [b"x", b"y", b"3"]
    box.put(Message("c", b"4"))
    box.clear()
    assert box.dropped == 3 and box.take() is None


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(1)
    for attempt in range(40):
        ceiling = min(CAP_S, 0.5 * 2**attempt)
        draws = [backoff_s(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert min(draws) < ceiling * 0.1 and max(draws) > ceiling * 0.9


@pytest.mark.parametrize(("table", "key"), [
    ('host = "192.168.1.5"', "mqtt.tls"),
    ('host = "broker.lan"\nca_file = "/x"\nallow_plain = true', "mqtt.tls"),
    ('host = "127.0.0.1"\nclient_id = "a/b"', "mqtt.client_id"),
    ('host = "127.0.0.1"\nbase_topic = "pivox/#"', "mqtt.base_topic"),
    ('host = "127.0.0.1"\nport = 70000', "mqtt.port"),
    ('host = "127.0.0.1"\npassword = "hunter2"', "mqtt.password"),
])
def test_config_errors(table: str, key: str) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.parse(f"[mqtt]\n{table}\n", "p.toml")
    assert err.value.key == key
    assert "hunter2" not in str(err.value)


def test_config_accepts_loopback_tls_or_an_explicit_plain() -> None:
    assert not config.parse("").mqtt.enabled
    m = config.parse('[mqtt]\nhost = "localhost"\n').mqtt
    assert m.enabled and m.broker_port == 1883
    m = config.parse('[mqtt]\nhost = "ha.lan"\ntls = true\nusername = "u"\n'
                     'password_file = "/etc/pivox/credentials/mqtt_password"\n').mqtt
    assert m.broker_port == 8883 and m.base_topic == "pivox"
    assert config.parse('[mqtt]\nhost = "10.0.0.2"\nallow_plain = true\n').mqtt.enabled


def test_the_broker_password_is_scrubbed_like_the_api_key(tmp_path: Any) -> None:
    from pivox import secrets

    pw = tmp_path / "mqtt_password"
    pw.write_text("# broker\nbroker-pass-7731\n")
    cfg = config.parse(f'[mqtt]\nhost = "localhost"\npassword_file = "{pw}"\n')
    found = secrets.config_secrets(cfg)
    assert "broker-pass-7731" in found
    assert "broker-pass-7731" not in secrets.redact("login broker-pass-7731 ok", found)


def test_fleet_listing_from_retained_messages() -> None:
    from pivox.home import fleet

    sp: dict[str, fleet.Speaker] = {}
    state = json.dumps({**dc.state_payload(status(), 0, "1.2"), "at": 1000.0}).encode()
    assert fleet.merge(sp, "pivox", "pivox/a/state", state, 1005.0)
    assert fleet.merge(sp, "pivox", "pivox/a/availability", b"online", 1005.0)
    assert fleet.merge(sp, "pivox", "pivox/b/availability", b"offline", 1005.0)
    assert fleet.merge(sp, "pivox", "pivox/c/state", b"\xff not json", 1005.0)
    assert not fleet.merge(sp, "pivox", "pivox/a/reply", b"{}", 1005.0)
    assert not fleet.merge(sp, "pivox", "other/a/state", state, 1005.0)
    rows = fleet.rows(sp, 1010.0)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0] == {"id": "a", "online": True, "state": "idle", "version": "1.2",
                       "link": "connected", "last_error": "", "muted": False, "volume": 35,
                       "last_seen": "1970-01-01T00:16:40+00:00", "seen_s_ago": 10.0}
    assert rows[1]["online"] is False and rows[1]["state"] is None
    assert rows[2]["online"] is None
    text = fleet.table(rows)
    assert text.splitlines()[1].split()[:5] == ["a", "yes", "idle", "1.2", "connected"]
    assert text.endswith("3 speaker(s)")
