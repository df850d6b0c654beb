"""`[mqtt]`: where the broker is and how to reach it. No host: MQTT is off.

Kept beside the adapter rather than in `pivox.config` (which imports it into `Config`)
because the section is self-contained; its fields carry the same `expected`/`check`
metadata as every other section, so `config.parse` checks them the same way. The password
lives in `password_file` (fit for systemd's LoadCredential=), never in the TOML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOPIC_PREFIX = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*")


def _opt(default: Any, expected: str, check: Any = None) -> Any:
    return field(default=default, metadata={"expected": expected, "check": check})


def _matches(pattern: re.Pattern[str]) -> Any:
    return lambda v: pattern.fullmatch(v) is not None


@dataclass(frozen=True)
class MqttConfig:
    host: str = _opt("", "a broker host name or address, or empty for no MQTT")
    port: int = _opt(0, "0 (1883, or 8883 with tls) or a port from 1 to 65535",
                     lambda v: 0 <= v <= 65535)
    tls: bool = _opt(False, "true or false")
    ca_file: str = _opt("", "a path to the CA certificate to trust, or empty for the system's")
    cert_file: str = _opt("", "a path to a client certificate (PEM), or empty")
    key_file: str = _opt("", "a path to the client certificate's key (PEM), or empty")
    username: str = _opt("", "a user name, or empty for none")
    password_file: str = _opt("", "a path to a file holding the broker password, or empty")
    client_id: str = _opt("", "empty (derived from /etc/machine-id), or 1 to 64 letters, "
                          "digits, _ and -", lambda v: v == "" or CLIENT_ID.fullmatch(v))
    base_topic: str = _opt("pivox", "a topic prefix of letters, digits, _ and - separated "
                           "by /", _matches(TOPIC_PREFIX))
    discovery_prefix: str = _opt("homeassistant", "a topic prefix of letters, digits, _ and "
                                 "- separated by /", _matches(TOPIC_PREFIX))
    allow_plain: bool = _opt(False, "true or false (allow MQTT without TLS to a non-loopback "
                             "broker)")

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)


def plain_problem(m: MqttConfig, loopback: Any) -> str:
    """Why this section may not be used as written, or "": a password or anything else
    crossing a network in the clear needs an explicit `allow_plain`, as `ws://` does."""
    if m.host and not m.tls and not m.allow_plain and not loopback(m.host):
        return "true for a non-loopback broker (or set mqtt.allow_plain = true)"
    if (m.cert_file or m.key_file or m.ca_file) and not m.tls:
        return "true when ca_file, cert_file or key_file is set"
    return ""
