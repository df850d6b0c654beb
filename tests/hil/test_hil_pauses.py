"""The wake word, a pause, then the question, through PulseAudio and real libasound.

The same scenarios as tests/integration/test_pauses.py, spoken into the rig's microphone
at real time to `pivox run` as the service runs it, against the quick reference server
(0.5 s of silence after any speech ends a turn): the wake word never becomes a turn, the
whole question reaches the server, and the reply starts after the question is over.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from processes import DaemonProcess, ServerThread
from rig import PulseRig

from pivox.audio.wavfile import read_wav
from pivox.reference.coverage import compose, coverage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "conversation"
KEYWORD = read_wav(FIXTURES / "okay_nabu.wav")
QUESTION = read_wav(FIXTURES / "question.wav")


@pytest.mark.parametrize("mode", ["server", "local"])
@pytest.mark.parametrize("pause", [0.3, 0.8, 1.5, 3.0])
def test_pause_after_the_wake_word_through_the_sound_server(
        rig: PulseRig, tmp_path: Path, pause: float, mode: str) -> None:
    server = ServerThread(keep_audio=True)
    d = DaemonProcess(tmp_path, rig, server.url,
                      extra=f'[conversation]\nturn_detection = "{mode}"\nfollow_up = "never"\n')
    try:
        d.wait_state("idle", 20)
        assert rig.feeder is not None
        speech, _ = compose([0.5, KEYWORD, pause, QUESTION, 0.5], seed=round(pause * 10))
        rig.feeder.say(speech)
        d.wait_state("speaking", 20)
        d.wait_state("idle", 25)
    finally:
        assert d.stop() == 0
        server.stop()
    heard = bytes(server.server.heard.get(1, b""))
    cov = coverage(QUESTION, heard, server.server.turn_log, 1)
    print(f"\nHIL PAUSE mode={mode} pause={pause}s question={cov.question_s:.2f}s "
          f"heard={cov.heard_s:.2f}s ({cov.fraction:.0%}) early_turns={cov.early_turns} "
          f"reply_after={cov.reply_after_s}")
    assert cov.early_turns == 0, server.server.turn_log
    assert cov.fraction >= 0.98, cov
    assert cov.reply_after_s is not None and cov.reply_after_s > 0, cov
    assert server.server.stats.replies == 1
