"""Coverage-guided fuzzing of the Live decoder with atheris (libFuzzer), run by hand:

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/atheris_codec.py -atheris_runs=100000
    .venv/bin/python tests/fuzz/atheris_codec.py -max_total_time=600 CORPUS_DIR

Not collected by pytest (no test_ prefix); the hypothesis fuzzers in this folder run in
the suite. Half of the inputs are raw frames; the other half are decoded by the fuzzed
data provider into JSON messages made of the protocol's own keys (either casing), so the
fuzzer reaches the decoder's branches instead of stopping at the JSON parser. Any
exception out of `LiveCodec.receive`, or an event of the wrong shape, is a crash.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

try:
    import atheris
except ImportError:  # pragma: no cover - a hand-run tool
    sys.exit("atheris is not installed: .venv/bin/pip install atheris")

with atheris.instrument_imports():
    from pivox.core import events as ev
    from pivox.core.models import profile_for
    from pivox.link import codec as lc

KEYS = (
    "setupComplete", "serverContent", "modelTurn", "parts", "inlineData", "mimeType", "data",
    "text", "interrupted", "generationComplete", "turnComplete", "inputTranscription",
    "outputTranscription", "finished", "interactionStatus", "toolCall", "functionCalls", "id",
    "name", "args", "toolCallCancellation", "ids", "goAway", "timeLeft", "seconds", "nanos",
    "sessionResumptionUpdate", "newHandle", "resumable", "usageMetadata", "totalTokenCount",
)
STRINGS = ("audio/pcm;rate=24000", "audio/pcm;rate=16000", "audio/pcm", "AAAA", "AAE=",
           "AAE", "-_-_", "@@", "10s", "1.5s", "IN_PROGRESS", "IDLE", "set_volume", "")
EVENTS = (
    lc.SetupComplete, ev.AudioOut, ev.Interrupted, ev.GenerationComplete, ev.TurnComplete,
    lc.GoAway, lc.SessionHandle, lc.ToolCall, lc.ToolCallCancelled, lc.Transcript, lc.Usage,
    ev.ServerBusy, lc.FrameError,
)
PROFILE = profile_for("gemini-3.8-live")[0]


def snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def value(fdp: atheris.FuzzedDataProvider, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9 if depth < 6 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 40))
    if kind == 3:
        return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24))
    if kind in (5, 6):
        return STRINGS[fdp.ConsumeIntInRange(0, len(STRINGS) - 1)]
    if kind == 7:
        return [value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return message(fdp, depth + 1)


def message(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        if fdp.ConsumeIntInRange(0, 7) == 0:
            key = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 8))
        else:
            key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
            if fdp.ConsumeBool():
                key = snake(key)
        out[key] = value(fdp, depth)
    return out


def check(events: Any) -> None:
    assert isinstance(events, list), events
    for e in events:
        assert isinstance(e, EVENTS), e
        if isinstance(e, lc.ToolCallCancelled):
            assert all(isinstance(i, str) for i in e.ids), e
        elif isinstance(e, lc.Usage):
            assert isinstance(e.total_tokens, int), e
        elif isinstance(e, ev.AudioOut):
            assert isinstance(e.pcm, bytes), e


def one_input(data: bytes) -> None:
    codec = lc.LiveCodec(PROFILE)
    if not data or data[0] & 1:
        check(codec.receive(data[1:]))
        check(codec.receive(data[1:].decode("utf-8", "replace")))
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    frame = json.dumps(message(fdp))
    check(codec.receive(frame))
    check(codec.receive(frame.encode()))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
