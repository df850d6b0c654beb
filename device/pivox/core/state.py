"""The machine's state: what the speaker is doing, its deadline and its flags.

Frozen data only; `core/machine.py` holds the table that moves it and `core/handlers.py`
the handlers the table names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pivox.core.events import Action, Event


class State(enum.Enum):
    BOOTING = "booting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    OFFLINE = "offline"
    MUTED = "muted"
    ERROR = "error"


@dataclass(frozen=True)
class Timings:
    """Deadlines in seconds. Defaults suit a kitchen speaker."""

    boot_s: float = 20.0  # audio must start within this, or ERROR
    no_speech_s: float = 8.0  # listening and nobody speaks: back to idle
    max_utterance_s: float = 30.0  # listening this long: stop waiting, expect the reply
    thinking_s: float = 10.0  # no reply this long after speech ends: apologise, idle
    reply_gap_s: float = 10.0  # speaking, no audio and no turnComplete this long: finish
    drain_s: float = 30.0  # speaking, turn over, speaker never drains: give up
    follow_up: str = "question"  # after a reply: "question" (if it asked), "always", "never"
    follow_up_s: float = 6.0  # ...keep listening this long without the wake word
    keep_warm_s: float = 60.0  # idle with an open session: close it after this
    offline_recheck_s: float = 30.0  # offline: nudge the link this often
    error_retry_s: float = 60.0  # error on a configuration failure: retry this slowly


@dataclass(frozen=True)
class Machine:
    state: State = State.BOOTING
    deadline: float | None = None
    link_up: bool = False
    heard_speech: bool = False  # LISTENING: the user has spoken in this turn
    discard_reply: bool = False  # after a local barge-in: drop the old turn's audio
    turn_done: bool = False  # SPEAKING: turnComplete seen, waiting for the speaker to drain;
    #                          THINKING: a reply was played and the server is still busy
    busy: bool = False  # the server reported interactionStatus IN_PROGRESS
    reason: str = ""  # OFFLINE/ERROR: why, for status and the journal
    error_kind: str = ""  # ERROR: "device" or "link"
    device: str = ""  # ERROR of kind "device": which one ("microphone", "speaker")
    uplink: bool = False  # microphone audio streams to the link (StartUplink..StopUplink)
    ringing: bool = False  # a timer or alarm rings (StartRinging..StopRinging), in any state
    activity: bool = False  # the user's turn is open (UserActivity(True)..UserActivity(False))
    follow_up: bool = False  # LISTENING after a reply, without the wake word
    reply_tail: str = ""  # the end of the reply's transcription so far
    asked: bool = False  # ...and whether it ends by asking the user something


Result = tuple[Machine, list[Action]]
E = TypeVar("E", bound=Event)
# A handler takes the event type it is filed under in TRANSITIONS (see `_on`).
Handler = Callable[[Machine, E, float, Timings], Result]
Key = tuple[State, type]

CONVERSATION = (State.LISTENING, State.THINKING, State.SPEAKING)


def initial(now: float, timings: Timings) -> Machine:
    return Machine(State.BOOTING, deadline=now + timings.boot_s)


