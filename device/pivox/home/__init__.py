"""Home Assistant and fleets over MQTT: settings, discovery payloads (pure), the outbox
and backoff (pure), the broker adapter, and `pivox fleet`.

Only `mqtt.py` and `fleet.py` import aiomqtt (the optional `mqtt` extra), so config and
status never need it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivox.home.mqtt import MqttBridge
    from pivox.home.settings import MqttConfig

log = logging.getLogger("pivox.mqtt")


def open_bridge(cfg: MqttConfig, status: Callable[[], dict[str, Any]],
                command: Callable[[dict[str, Any]], dict[str, Any]]) -> MqttBridge | None:
    """The broker adapter, or None (said once) when the optional package is missing: a
    speaker without its Home Assistant entities still answers its wake word."""
    try:
        from pivox.home.mqtt import MqttBridge
    except ImportError as exc:
        log.error("mqtt: [mqtt] host is set but %s; install the mqtt extra "
                  "(pip install 'pivox[mqtt]'); running without MQTT", exc)
        return None
    return MqttBridge(cfg, status, command)
