"""What waits to go to the broker, how long to wait before the next try, and the counters.

Pure. The outbox is bounded and keyed by topic, so a state that changes while the broker
is slow replaces the one still waiting (the latest state wins) instead of queueing behind
it; replies are not keyed (each one answers a different command) and the oldest message
goes when the box is full. Every message that never went out is counted in `dropped`.

The backoff is its own small function rather than `core/linkpolicy.py`'s: that one lives
inside the link's stateful policy (probes, grace retries, overload rules for the Live
service) and exposes no plain delay helper; the broker needs only the delay itself.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

LIMIT = 64  # distinct topics waiting: a speaker has about 20; replies fill the rest
BASE_S, CAP_S = 0.5, 30.0
MAX_EXPONENT = 30


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 0


class Outbox:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.dropped = 0
        self._pending: OrderedDict[object, Message] = OrderedDict()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, msg: Message, *, latest_wins: bool = True) -> None:
        key: object = msg.topic
        if not latest_wins:
            self._seq += 1
            key = (msg.topic, self._seq)
        if key in self._pending:
            self.dropped += 1  # superseded before it went out
            del self._pending[key]
        elif len(self._pending) >= self.limit:
            self._pending.popitem(last=False)
            self.dropped += 1
        self._pending[key] = msg

    def take(self) -> Message | None:
        if not self._pending:
            return None
        return self._pending.popitem(last=False)[1]

    def clear(self) -> None:
        """Before a full republish: what waited is sent again, fresh, anyway."""
        self.dropped += len(self._pending)
        self._pending.clear()


def backoff_s(attempt: int, rng: random.Random, base_s: float = BASE_S,
              cap_s: float = CAP_S) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**attempt)), so a fleet that lost its
    broker together does not return to it together."""
    return rng.uniform(0.0, min(cap_s, base_s * 2 ** min(attempt, MAX_EXPONENT)))


@dataclass(frozen=True)
class MqttSnapshot:
    connected: bool
    broker: str  # host:port, never credentials
    node: str
    published: int
    dropped: int
    queued: int
    connects: int
    reconnects: int
    commands: int
    rejected: int
    last_error: str
