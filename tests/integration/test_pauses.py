"""The wake word, a pause, then the question: against a server as quick as Google's.

The reference server ends a user turn 0.5 s after any speech it hears, as Gemini's
automatic activity detection does. Whatever the device streams after the wake event is
"the user", so these scenarios check that the wake word's tail never reaches it, that the
whole question does (and nothing is lost when the user talks straight through), and that
no reply starts before the question is over, with the server's turn detection and with
the device's own (activityStart / activityEnd).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from live import make_config, write_wav

from pivox.audio.wavfile import read_wav
from pivox.reference.coverage import Coverage, compose, coverage
from pivox.reference.server import ReferenceServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "conversation"
KEYWORD = read_wav(FIXTURES / "okay_nabu.wav")
QUESTION = read_wav(FIXTURES / "question.wav")
PAUSES = (0.3, 0.8, 1.5, 3.0)
MODES = ("server", "local")


def scenario(tmp: Path, pause: float) -> Path:
    pcm, _ = compose([0.6, KEYWORD, pause, QUESTION, 3.0], seed=round(pause * 10))
    return write_wav(tmp / f"mic_{pause}.wav", pcm)


def converse(tmp: Path, pause: float, mode: str, run_daemon: Any, **server_kw: Any
             ) -> tuple[Coverage, ReferenceServer, Any]:
    async def main() -> tuple[ReferenceServer, Any]:
        server = ReferenceServer(keep_audio=True, **server_kw)
        await server.start()
        try:
            cfg = make_config(tmp, server.url, mic=scenario(tmp, pause),
                              extra=f'[conversation]\nturn_detection = "{mode}"\n'
                                    'follow_up = "never"\n')
            run = await run_daemon(cfg, lambda r: "speaking" in r.states
                                   and r.states[-1] == "idle", timeout=30)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    assert server.stats.connections >= 1
    heard = bytes(server.heard.get(1, b""))
    return coverage(QUESTION, heard, server.turn_log, 1), server, run


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pause", PAUSES)
def test_the_whole_question_is_the_turn_whatever_the_pause(
        tmp_path: Path, run_daemon: Any, pause: float, mode: str) -> None:
    cov, server, _ = converse(tmp_path, pause, mode, run_daemon)
    print(f"\nPAUSE mode={mode} pause={pause}s question={cov.question_s:.2f}s "
          f"heard={cov.heard_s:.2f}s ({cov.fraction:.0%}) early_turns={cov.early_turns} "
          f"reply_after={cov.reply_after_s}")
    assert cov.early_turns == 0, f"the server took something before the question as a turn: " \
                                 f"{server.turn_log}"
    assert cov.fraction >= 0.98, cov
    assert cov.reply_after_s is not None and cov.reply_after_s > 0, cov
    assert server.stats.replies == 1


@pytest.mark.parametrize("mode", MODES)
def test_talking_straight_through_loses_no_word(
        tmp_path: Path, run_daemon: Any, mode: str) -> None:
    cov, server, _ = converse(tmp_path, 0.0, mode, run_daemon)
    print(f"\nPAUSE mode={mode} pause=0s question={cov.question_s:.2f}s "
          f"heard={cov.heard_s:.2f}s ({cov.fraction:.0%}) reply_after={cov.reply_after_s}")
    assert cov.early_turns == 0, server.turn_log
    assert cov.fraction >= 0.98, cov
    assert cov.reply_after_s is not None and cov.reply_after_s > 0
