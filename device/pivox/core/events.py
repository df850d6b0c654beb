"""Events the machine consumes and actions it emits.

Frozen dataclasses only: they cross threads and land in logs, so nothing in here may
hold a socket, a device handle or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

# ---------------------------------------------------------------- events (inputs)


@dataclass(frozen=True)
class AudioReady:
    """A device works: the microphone (with the wake engine) at start and after it
    recovers, or the speaker after it recovers."""

    device: str = "microphone"


@dataclass(frozen=True)
class WakeDetected:
    keyword: str


@dataclass(frozen=True)
class StopSpoken:
    """A stop word (armed only while the speaker talks): end the reply, like the button."""

    keyword: str


@dataclass(frozen=True)
class TalkPressed:
    """The talk button, or `pivox talk`: start a conversation, or end the current one."""


@dataclass(frozen=True)
class SpeechStarted:
    """The local voice activity detector heard the user start speaking."""


@dataclass(frozen=True)
class SpeechEnded:
    """The local voice activity detector heard the user stop speaking."""


@dataclass(frozen=True)
class LinkUp:
    """The session is set up (setupComplete received) and accepts audio."""


@dataclass(frozen=True)
class LinkDown:
    """The session is gone or could not be opened.

    `config_error` is true for failures a retry with the same settings cannot fix
    (close codes 1007/1008, a rejected API key).
    """

    reason: str
    config_error: bool = False


@dataclass(frozen=True)
class AudioOut:
    """A chunk of the model's spoken reply: s16le mono at 24 kHz."""

    pcm: bytes


@dataclass(frozen=True)
class Interrupted:
    """The server stopped generating because the user spoke over the reply."""


@dataclass(frozen=True)
class GenerationComplete:
    """The model has produced all of this turn's audio (some may still be in flight)."""


@dataclass(frozen=True)
class TurnComplete:
    """The model's turn is over; nothing more arrives for it."""


@dataclass(frozen=True)
class ServerBusy:
    """The server's interactionStatus: still working on the request (IN_PROGRESS), or not.

    A reasoning model may speak several times for one request; the conversation stays
    open until it reports IDLE.
    """

    busy: bool


@dataclass(frozen=True)
class PlaybackDrained:
    """Everything queued for the speaker has been played (after FinishPlayback)."""


@dataclass(frozen=True)
class MuteSet:
    """Privacy mute switched on or off (button or control socket)."""

    on: bool


@dataclass(frozen=True)
class DeviceFailed:
    """An audio device is missing, busy or vanished. `device` names it for the journal."""

    device: str
    reason: str


@dataclass(frozen=True)
class ReplySaid:
    """A piece of the reply's output transcription: whether the reply ends by asking the
    user something decides the follow-up."""

    text: str


@dataclass(frozen=True)
class Ring:
    """A timer or alarm came due (the scheduler task). `text` asks the model to say which,
    if a session is open and nothing else is going on."""

    label: str
    text: str = ""


@dataclass(frozen=True)
class RingEnd:
    """Ringing stops: `pivox timers stop`, the model's stop, or its five minutes are up."""


@dataclass(frozen=True)
class Announce:
    """Say `text` to the room (`pivox announce`): the model says it if a session is open,
    a local voice otherwise. Posted once no conversation is in the way."""

    text: str


@dataclass(frozen=True)
class Timeout:
    """The current state's deadline has passed. The loop sends it; the machine checks it."""


Event = (
    AudioReady
    | WakeDetected
    | StopSpoken
    | TalkPressed
    | SpeechStarted
    | SpeechEnded
    | LinkUp
    | LinkDown
    | AudioOut
    | Interrupted
    | GenerationComplete
    | TurnComplete
    | ServerBusy
    | PlaybackDrained
    | MuteSet
    | DeviceFailed
    | ReplySaid
    | Ring
    | RingEnd
    | Announce
    | Timeout
)

EVENT_TYPES: tuple[type, ...] = get_args(Event)

# ---------------------------------------------------------------- actions (outputs)


@dataclass(frozen=True)
class OpenLink:
    """Connect (or keep connecting, with backoff) to the realtime model."""


@dataclass(frozen=True)
class CloseLink:
    """Close the session politely; the resumption handle is kept for the next one."""


@dataclass(frozen=True)
class StartUplink:
    """Stream microphone audio to the link, starting with the pre-roll ring."""


@dataclass(frozen=True)
class StopUplink:
    """Stop streaming microphone audio to the link."""


@dataclass(frozen=True)
class Play:
    """Queue reply audio (s16le mono 24 kHz) for the speaker."""

    pcm: bytes


@dataclass(frozen=True)
class FlushPlayback:
    """Silence the speaker now and discard everything queued (barge-in)."""


@dataclass(frozen=True)
class FinishPlayback:
    """No more reply audio is coming: play out what is queued, then report PlaybackDrained."""


@dataclass(frozen=True)
class PlayPrompt:
    """Play a bundled earcon or spoken prompt: wake, offline, apology, error, mute, unmute."""

    name: str


@dataclass(frozen=True)
class SetMute:
    """Close (or reopen) the microphone gate in the capture thread."""

    on: bool


@dataclass(frozen=True)
class SetReplying:
    """The speaker starts (or stops) playing a reply: the stop word is armed and the echo's
    residual is held back from the model only while this is on."""

    on: bool


@dataclass(frozen=True)
class UserActivity:
    """The user's turn starts (on) or ends (off), by the local speech detector. With local
    turn detection the link sends activityStart / activityEnd for it; the server decides
    otherwise, and this is only bookkeeping."""

    on: bool


@dataclass(frozen=True)
class ExpectReply:
    """The user's turn is over: an answer is due, so a silent link now means a dead one."""


@dataclass(frozen=True)
class ReportProblem:
    """One journal line, and status, saying what is wrong and what the speaker does about it."""

    kind: str
    detail: str


@dataclass(frozen=True)
class StartRinging:
    """Ring for `label`: the ring earcon repeated and the ringing LEDs, until StopRinging."""

    label: str


@dataclass(frozen=True)
class StopRinging:
    """Silence every timer and alarm that rings."""


@dataclass(frozen=True)
class SendText:
    """A user turn as text (clientContent): the model answers it aloud."""

    text: str


@dataclass(frozen=True)
class SayLocally:
    """Say `text` with the device's own voice, after the announce earcon (no link)."""

    text: str


Action = (
    OpenLink
    | CloseLink
    | StartUplink
    | StopUplink
    | Play
    | FlushPlayback
    | FinishPlayback
    | PlayPrompt
    | SetMute
    | SetReplying
    | UserActivity
    | ExpectReply
    | ReportProblem
    | StartRinging
    | StopRinging
    | SendText
    | SayLocally
)
