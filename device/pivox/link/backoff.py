"""Reconnect delays: exponential backoff with full jitter, reset once a link proved stable.

websockets' own reconnect loop resets its backoff whenever a handshake succeeds, so a
server that accepts and then closes at once (overload, 1011) would be retried in a hot
loop; this policy only resets after a connection has stayed up for `stable_s`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    stable_s: float = 10.0
    attempt: int = 0
    rng: random.Random | None = None

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * (2**self.attempt))
        self.attempt += 1
        return (self.rng or random).uniform(0, ceiling)

    def connected_for(self, seconds: float) -> None:
        """Report how long the last connection lasted."""
        if seconds >= self.stable_s:
            self.attempt = 0
