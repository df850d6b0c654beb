"""Follow-up without the wake word, and the local time, against the quick reference server.

The microphone says the wake word and a question, waits through the reply, and speaks
again once it is over, without the wake word. A reply that ends by asking keeps the
speaker listening, so the second utterance is a second turn; one that does not sends the
speaker back to idle and the second utterance never reaches the server.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from live import make_config, write_wav

from pivox.audio.wavfile import read_wav
from pivox.reference.coverage import compose
from pivox.reference.server import ReferenceServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "conversation"
KEYWORD = read_wav(FIXTURES / "okay_nabu.wav")
QUESTION = read_wav(FIXTURES / "question.wav")


def mic(tmp: Path) -> Path:
    pcm, _ = compose([0.6, KEYWORD, 0.5, QUESTION, 7.0, QUESTION, 4.0], seed=5)
    return write_wav(tmp / "mic.wav", pcm)


def converse(tmp: Path, run_daemon: Any, extra: str = "", **server_kw: Any
             ) -> tuple[ReferenceServer, Any]:
    async def main() -> tuple[ReferenceServer, Any]:
        server = ReferenceServer(**server_kw)
        await server.start()
        try:
            cfg = make_config(tmp, server.url, mic=mic(tmp), extra=extra)
            run = await run_daemon(cfg, lambda r: r.states.count("speaking") >= 2
                                   and r.states[-1] == "idle", timeout=22)
        finally:
            await server.stop()
        return server, run

    return asyncio.run(main())


def test_a_reply_that_asks_gets_an_answer_without_the_wake_word(tmp_path: Path,
                                                                 run_daemon: Any) -> None:
    server, run = converse(tmp_path, run_daemon, reply_dir=FIXTURES / "replies")
    names = [n for n, _ in run.events]
    assert names.count("WakeDetected") == 1
    assert server.stats.turns == 2 and server.stats.replies == 2
    assert [t.reply_text.endswith("?") for t in server.turn_log] == [True, False]
    visited = [s for i, s in enumerate(run.states) if i == 0 or run.states[i - 1] != s]
    first_reply = visited.index("speaking")
    assert visited[first_reply + 1] == "listening"  # straight back to listening, no wake
    assert visited[-2:] == ["speaking", "idle"]


def test_a_reply_that_does_not_ask_goes_back_to_idle_and_tells_the_time(
        tmp_path: Path, run_daemon: Any) -> None:
    server, run = converse(tmp_path, run_daemon,
                           extra='[home]\nlocation = "Osaka, Japan"\ntimezone = "Asia/Tokyo"\n',
                           tool_call=("get_local_time", {}))
    assert server.stats.turns == 1, server.turn_log  # the second utterance never went up
    visited = [s for i, s in enumerate(run.states) if i == 0 or run.states[i - 1] != s]
    assert visited[-2:] == ["speaking", "idle"]
    setup = server.received[0]["setup"]
    assert "Osaka, Japan" in setup["systemInstruction"]["parts"][0]["text"]
    (resp,) = [m["toolResponse"]["functionResponses"][0] for m in server.received
               if "toolResponse" in m]
    result = resp["response"]["result"]
    told = datetime.fromisoformat(result["iso"])
    assert result["timezone"] == "Asia/Tokyo"
    assert told.utcoffset() == datetime.now(ZoneInfo("Asia/Tokyo")).utcoffset()
    assert abs(told.timestamp() - time.time()) < 60  # read at call time
