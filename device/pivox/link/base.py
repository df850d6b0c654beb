"""What the daemon needs from a realtime speech backend, whichever it is.

The daemon talks to "a realtime link": it hands it microphone audio and tool results,
and receives machine events (`pivox.core.events`: LinkUp, LinkDown, AudioOut,
Interrupted, TurnComplete, ...) plus the backend-neutral events below through the
`on_event` callback it gave the link. Gemini Live (`link/codec.py`, `link/session.py`,
`core/models.py`) is one implementation. A second backend (OpenAI Realtime, say) provides
a class with this shape and its own codec; nothing outside `link/` changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# ------------------------------------------------------------ neutral events (link -> daemon)


@dataclass(frozen=True)
class FunctionCall:
    id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model asks the device to run these functions."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True)
class ToolCallCancelled:
    """The model withdrew these calls (the user interrupted); do not run or answer them."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Transcript:
    direction: str  # "input" (the user) or "output" (the model)
    text: str
    finished: bool = False


@dataclass(frozen=True)
class LinkSnapshot:
    """The link's state for status, diagnostics and the watchdog; copied, never shared."""

    backend: str
    connected: bool
    connects: int
    connects_ok: int  # connections that reached the point where audio is accepted
    last_error: str
    resumable: bool
    frames_up: int
    frames_down: int
    bytes_up: int
    bytes_down: int
    audio_dropped_ms: int
    frame_errors: int
    server_errors: int
    retry_in_s: float  # how long until the next connection attempt (0: not waiting)


@dataclass
class LinkStats:
    """The link's counters; `snapshot()` is the copy others read."""

    connected: bool = False
    connects: int = 0  # websocket handshakes that succeeded
    connects_ok: int = 0  # connections that reached setupComplete
    last_error: str = ""
    resumable: bool = False
    frames_up: int = 0
    frames_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    audio_dropped_ms: int = 0
    frame_errors: int = 0
    server_errors: int = 0


EventSink = Callable[[object], None]


class RealtimeLink(Protocol):
    """One long-lived connection to a realtime model, kept open while wanted.

    All methods are called on the event loop's thread and never block; `run` is the one
    task that owns the connection (the supervisor runs it and notices if it ends).
    """

    name: str

    async def run(self) -> None: ...

    async def close(self) -> None: ...

    def want(self, open_: bool) -> None:
        """Open (and keep open, reconnecting) or close the session. Opening while a user
        waits cuts any backoff sleep short."""
        ...

    def send_audio(self, pcm: bytes, captured_at: float | None = None) -> None:
        """Queue 16 kHz s16le mono microphone audio (bounded; oldest dropped, counted)."""
        ...

    def send_audio_end(self) -> None:
        """The microphone stream pauses (the model may end the user's turn)."""
        ...

    def send_activity(self, start: bool) -> None:
        """The user's turn starts or ends (local turn detection), in order with the audio."""
        ...

    def send_tool_response(self, call: FunctionCall, result: dict[str, Any],
                           scheduling: str) -> None: ...

    def send_text(self, text: str) -> bool:
        """A user turn as text (clientContent), answered aloud; False if no session is open."""
        ...

    def expect_reply(self) -> None:
        """The user finished speaking: an answer is due, so silence now means trouble."""
        ...

    def network_changed(self) -> None:
        """The host's network came back (a default route or a usable address appeared):
        a link that is down retries now instead of at the end of its backoff."""
        ...

    def stalled(self, now: float) -> str:
        """The supervisor's check: "" while `run` is back from each step on time."""
        ...

    def snapshot(self) -> LinkSnapshot: ...
