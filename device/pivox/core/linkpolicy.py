"""The link's decisions without its sockets: when to connect, wait, probe, hand over or give up.

Pure, in the manner of websockets' sans-I/O protocol and `core/machine.py`: no socket, no
asyncio, no clock. The adapter (`link/session.py`) reports what happened, always with `now`
(monotonic seconds), and carries out the actions that come back; between connections it
asks `next_step(now)` and connects, probes, or waits until a time or until woken.

Rules, each a unit test in tests/unit/test_linkpolicy.py:

- Backoff: full jitter, `uniform(0, min(cap_s, base_s * 2**n))`; `n` grows with each
  failure and resets only once a connection stayed up `stable_s` after its setupComplete,
  so a server that accepts and closes at once (1011) is never retried in a hot loop.
- Grace: a session that worked for `grace_after_s` and drops gets one quiet, immediate
  retry (buffered audio goes out, the handle resumes the context) before the speaker hears
  of it. Re-armed once the speaker was told, or by a stable connection.
- Configuration: close 1007/1008, HTTP 401/403/404, no key or an insecure URL: LinkDown
  with config_error, and no retrying until the link is wanted again.
- Overload: close 1011, "resource exhausted", HTTP 429 or 5xx: the full backoff; neither
  a probe nor a network event cuts it short.
- A user waiting (`want(True)`) ends the current wait at once.
- Liveness without pongs: dead when setup is not answered in `setup_timeout_s`, or no
  frame comes for `liveness_s` while a reply is expected.
- goAway: hand over between turns, or `goaway_margin_s` before the server's deadline.
  A clean close that we did not ask for counts as a failure (else 1000-then-accept loops).
- A network event (a default route or a usable address appeared; `hw/netwatch.py`) while
  the link is down resets the backoff and retries after at most `net_jitter_s`; an
  attempt connecting for `stuck_s` already is abandoned and restarted, a younger one
  is retried at once if it fails; an idle open session (no turn under way) is replaced at
  once, quietly, since its socket may belong to an address that is gone.
- Probe: once a wait is longer than `probe_s`, a cheap TCP connect to the endpoint every
  `probe_s`; when one succeeds, connect after `uniform(0, spread_s)`. If that connection
  then fails before setup, probes stop until the next network event or working session.

Why the fleet spread is not applied to network events: a route or an address appearing
says this speaker's own network came back (a router reboot, Wi-Fi back); it says nothing
about the service, and it happens to one home's few speakers, not to a fleet at once, so
they retry within `net_jitter_s` and are back within a second. A fleet that lost the same
service learns of its return by probing: their probes land within one `probe_s` of each
other, and each then waits `uniform(0, spread_s)`, so the service sees the returning fleet
over about `probe_s + spread_s` rather than all at once.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

CONFIG_CLOSE_CODES = frozenset({1007, 1008})
CONFIG_HTTP = frozenset({401, 403, 404})
OVERLOAD_CLOSE_CODES = frozenset({1011, 1013})
OVERLOAD_STATUSES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})
MAX_EXPONENT = 30


@dataclass(frozen=True)
class Params:
    base_s: float = 0.5
    cap_s: float = 30.0
    stable_s: float = 10.0  # a connection this long resets the backoff
    grace_after_s: float = 2.0  # a session that worked this long gets one quiet retry
    goaway_margin_s: float = 5.0  # switch at the latest this long before the deadline
    setup_timeout_s: float = 10.0
    liveness_s: float = 8.0
    probe_s: float = 3.0  # 0: never probe
    spread_s: float = 2.0  # a probe's success: connect after uniform(0, spread_s)
    net_jitter_s: float = 0.25  # a network event: retry after uniform(0, this)
    stuck_s: float = 1.0  # a network event abandons an attempt connecting this long


# ------------------------------------------------------------------ what the adapter does


@dataclass(frozen=True)
class Connect:
    """Open a connection now (then report `attempt_started`)."""


@dataclass(frozen=True)
class Probe:
    """Try a TCP connect to the endpoint and report `probe_result`."""


@dataclass(frozen=True)
class Wait:
    """Sleep until `until` (None: until woken by an event)."""

    until: float | None


@dataclass(frozen=True)
class StartSending:
    """Setup is complete on this connection: start its (single) audio sender."""


@dataclass(frozen=True)
class ReportUp:
    pass


@dataclass(frozen=True)
class ReportDown:
    reason: str
    config_error: bool
    retry_in_s: float


@dataclass(frozen=True)
class Reconnecting:
    """A working session dropped: retrying at once, quietly (no LinkDown)."""

    reason: str


@dataclass(frozen=True)
class StopRetrying:
    reason: str


@dataclass(frozen=True)
class Kill:
    """Abort the connection without a closing handshake: it is dead, or (`quiet`) it is
    being replaced after a network change."""

    reason: str
    quiet: bool = False


@dataclass(frozen=True)
class HandOver:
    """Close this connection cleanly (after its last frame is out) and open the next."""


@dataclass(frozen=True)
class Disconnect:
    """The link is not wanted: close the open connection."""


Step = Connect | Probe | Wait
Action = StartSending | ReportUp | ReportDown | Reconnecting | StopRetrying | Kill | HandOver \
    | Disconnect


class Phase(enum.Enum):
    DOWN = "down"
    CONNECTING = "connecting"  # TCP, TLS and the websocket handshake
    OPEN = "open"  # setup sent, not yet answered
    UP = "up"  # setupComplete: audio is accepted


def overload_text(text: str) -> bool:
    return "resource exhausted" in text.lower().replace("_", " ")


class LinkPolicy:
    """One link's reconnect, liveness and handover decisions. Owned by one adapter."""

    def __init__(self, params: Params | None = None, rng: random.Random | None = None) -> None:
        self.params = params or Params()
        self.rng = rng or random.Random()  # never the global one (tests seed their own)
        self.wanted = False
        self.phase = Phase.DOWN
        self.attempt = 0  # the backoff exponent
        self.overloaded = False  # the last failure said the server is overloaded
        self.attempts = 0
        self.probes = 0
        self._retry_at: float | None = None  # None: now
        self._probe_at: float | None = None
        self._grace = True
        self._probe_trusted = True
        self._after_probe = False  # the current attempt follows a successful probe
        self._new_connection(0.0)

    def _new_connection(self, now: float) -> None:
        self._started = now
        self._up_since: float | None = None
        self._last_frame = now
        self._expecting = False
        self._turn_open = False
        self._goaway_at: float | None = None
        self._ours = False  # we asked for the close (handover, not wanted)
        self._dead = ""
        self._restart = False  # abandoned for a network event: not a failure
        self._overload_hint = False

    # ------------------------------------------------------------ between connections

    def next_step(self, now: float) -> Step:
        if not self.wanted or self.phase is not Phase.DOWN:
            return Wait(None)
        if self._retry_at is None or now >= self._retry_at:
            return Connect()
        if self._probe_at is not None:
            if now >= self._probe_at:
                return Probe()
            return Wait(min(self._retry_at, self._probe_at))
        return Wait(self._retry_at)

    def retry_in(self, now: float) -> float:
        """Seconds until the next connection attempt (0: not waiting)."""
        if not self.wanted or self.phase is not Phase.DOWN or self._retry_at is None:
            return 0.0
        return max(0.0, self._retry_at - now)

    def want(self, now: float, open_: bool) -> list[Action]:
        if not open_:
            self.wanted = False
            if self.phase in (Phase.OPEN, Phase.UP):
                self._ours = True
                return [Disconnect()]
            return []
        self.wanted = True
        if self.phase is Phase.UP:
            return [ReportUp()]  # say so again: the caller's view is current
        self.user_waiting(now)
        return []

    def user_waiting(self, now: float) -> None:
        """Someone is waiting for the link: skip the rest of the backoff."""
        if self.phase is Phase.DOWN:
            self._retry_at = None

    def network_changed(self, now: float) -> list[Action]:
        if self.overloaded:
            return []
        self.attempt = 0
        self._probe_trusted = True
        if not self.wanted:
            return []
        if self.phase is Phase.DOWN:
            soon = now + self.rng.uniform(0, self.params.net_jitter_s)
            if self._retry_at is not None and self._retry_at > soon:
                self._retry_at = soon
            self._probe_at = None
        elif self.phase in (Phase.CONNECTING, Phase.OPEN):
            self._restart = True  # if this attempt fails, it is retried at once
            if self.phase is Phase.CONNECTING and now - self._started >= self.params.stuck_s:
                return [Kill("network changed", quiet=True)]  # likely stuck on the old one
        elif not (self._turn_open or self._expecting or self._ours or self._dead):
            self._ours = True  # an idle session may be tied to an address that is gone:
            return [Kill("network changed", quiet=True)]  # replace it now (it resumes)
        return []

    def probe_result(self, now: float, ok: bool) -> None:
        self.probes += 1
        if self.phase is not Phase.DOWN or self._retry_at is None:
            return
        if ok:
            self._probe_at = None
            self._retry_at = min(self._retry_at, now + self.rng.uniform(0, self.params.spread_s))
            self._after_probe = True
        else:
            nxt = now + self.params.probe_s
            self._probe_at = nxt if nxt < self._retry_at else None

    # ------------------------------------------------------------ one connection

    def attempt_started(self, now: float) -> None:
        self.phase = Phase.CONNECTING
        self.attempts += 1
        self._retry_at = self._probe_at = None
        self._new_connection(now)

    def opened(self, now: float) -> list[Action]:
        """The websocket is open and setup has been sent."""
        self.phase = Phase.OPEN
        self._last_frame = now
        if not self.wanted:
            self._ours = True
            return [Disconnect()]
        return []

    def setup_complete(self, now: float) -> list[Action]:
        if self.phase is not Phase.OPEN:
            return []  # a repeated setupComplete changes nothing
        self.phase = Phase.UP
        self._up_since = self._last_frame = now
        self._probe_trusted = True
        self._restart = False
        return [StartSending(), ReportUp()]

    def frame_received(self, now: float) -> None:
        self._last_frame = now

    def reply_expected(self, now: float) -> None:
        """The user finished speaking: a frame should come within `liveness_s`."""
        self._expecting = self._turn_open = True
        self._last_frame = now

    def turn_opened(self, now: float) -> None:
        """Model audio arrived: a goAway now waits for this turn to end."""
        self._turn_open = True

    def generation_complete(self, now: float) -> None:
        self._expecting = False

    def turn_closed(self, now: float) -> list[Action]:
        """turnComplete or interrupted."""
        self._expecting = self._turn_open = False
        return self._handover(now)

    def go_away(self, now: float, time_left_s: float) -> list[Action]:
        self._goaway_at = now + max(0.0, time_left_s - self.params.goaway_margin_s)
        return self._handover(now)

    def server_error(self, now: float, status: str, message: str) -> None:
        """An `error` message: an overload says the next close gets the full backoff."""
        if status.upper() in OVERLOAD_STATUSES or overload_text(message):
            self._overload_hint = True

    def tick(self, now: float) -> list[Action]:
        """Called every fraction of a second while a connection is open."""
        if self._dead or self._ours:
            return []
        quiet = now - self._last_frame
        if self.phase is Phase.OPEN and quiet > self.params.setup_timeout_s:
            self._dead = "setup not answered"
        elif self.phase is Phase.UP and self._expecting and quiet > self.params.liveness_s:
            self._dead = f"no answer for {quiet:.0f} s"
        if self._dead:
            return [Kill(self._dead)]
        return self._handover(now)

    def _handover(self, now: float) -> list[Action]:
        if self._goaway_at is None or self._ours or self._dead or self.phase is not Phase.UP:
            return []
        if self._turn_open and now < self._goaway_at:
            return []
        self._ours = True
        return [HandOver()]

    def closed(self, now: float, code: int | None, reason: str = "") -> list[Action]:
        """The connection ended. `code` is the server's close code (None: no close frame)."""
        if self._dead:
            return self._failed(now, self._dead)
        if self._ours and not self._restart:
            self._ended(now)
            return []  # a handover or an idle close: next_step connects at once if wanted
        if code is None:
            return self._failed(now, "connection lost")
        text = f"server closed with {code}: {reason}" if reason else f"server closed with {code}"
        if code in CONFIG_CLOSE_CODES:
            return self._config_error(now, text)
        return self._failed(now, text, code in OVERLOAD_CLOSE_CODES or overload_text(reason))

    def connect_failed(self, now: float, reason: str, *, status: int | None = None,
                       config: bool = False) -> list[Action]:
        """No connection: refused, unreachable, timed out, HTTP `status`, or a local
        configuration problem (`config`: no key, an insecure URL)."""
        if config or status in CONFIG_HTTP:
            return self._config_error(now, reason)
        return self._failed(now, reason, status is not None and (status == 429 or status >= 500))

    # ------------------------------------------------------------ internals

    def _ended(self, now: float) -> float:
        """Back to DOWN; returns how long the session was up (0: never set up)."""
        lived = now - self._up_since if self._up_since is not None else 0.0
        self.phase = Phase.DOWN
        if lived >= self.params.stable_s:
            self.attempt = 0
            self._grace = True
        return lived

    def _config_error(self, now: float, reason: str) -> list[Action]:
        self._ended(now)
        self.wanted = False
        self._grace = True
        return [ReportDown(reason, True, 0.0), StopRetrying(reason)]

    def _failed(self, now: float, reason: str, overloaded: bool = False) -> list[Action]:
        was_up = self._up_since is not None
        lived = self._ended(now)
        if self._restart:
            self._retry_at = now + self.rng.uniform(0, self.params.net_jitter_s)
            return []
        self.overloaded = overloaded or self._overload_hint
        if self._after_probe and not was_up:
            self._probe_trusted = False  # the port answers, the service does not
        self._after_probe = False
        if not self.wanted:
            return []
        if was_up and lived >= self.params.grace_after_s and self._grace:
            self._grace = False
            self._retry_at = None
            return [Reconnecting(reason)]
        self._grace = True
        delay = self._next_delay()
        self._retry_at = now + delay
        probe = self.params.probe_s
        self._probe_at = None
        if probe > 0 and delay > probe and self._probe_trusted and not self.overloaded:
            self._probe_at = now + probe
        return [ReportDown(reason, False, delay)]

    def _next_delay(self) -> float:
        ceiling = min(self.params.cap_s, self.params.base_s * 2 ** self.attempt)
        self.attempt = min(self.attempt + 1, MAX_EXPONENT)
        return self.rng.uniform(0, ceiling)
