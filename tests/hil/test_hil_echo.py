"""The speaker must not hear itself: its reply comes back into the microphone through the
room (tests/hil/rig.py EchoPath), and says the speaker's own wake word.

With the echo canceller the reply neither wakes the speaker nor makes the server interrupt
it, even with the microphone streaming to the server the whole time (full duplex). Without
the canceller the same rig makes it interrupt itself, which shows the rig can tell.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from processes import DaemonProcess, ServerThread
from rig import PulseRig
from test_hil_daemon import demo_speech


@pytest.fixture(autouse=True)
def _needs_an_echo_path(rig: PulseRig) -> None:
    if not rig.can_echo:
        pytest.skip("this rig has no echo path")


def conversation(rig: PulseRig, d: DaemonProcess) -> dict:
    pcm, _ = demo_speech()
    rig.feeder.say(pcm)
    d.wait_state("speaking", 15)
    return d.wait_state("idle", 30)


def test_full_duplex_with_the_echo_canceller_does_not_interrupt_itself(
        rig: PulseRig, name_server: ServerThread, tmp_path: Path) -> None:
    rig.add_echo(gain=0.5, delay_s=0.03)
    d = DaemonProcess(tmp_path, rig, name_server.url, '[conversation]\nduplex = "auto"\n')
    try:
        d.wait_state("idle", 20)
        learnt = 0
        for learnt in range(1, 4):  # the canceller learns the room on the first replies
            conversation(rig, d)
            st = d.status()
            print(f"reply {learnt}:", {k: st["audio"][k] for k in
                                       ("erle_db", "echo_converged", "own_voice_ignored")})
            if st["audio"]["echo_converged"]:
                break
        assert st["audio"]["echo_converged"], {k: st["audio"][k] for k in ("erle_db", "room")}
        st = conversation(rig, d)  # now in full duplex: the server hears the residual echo
        print("echo:", {k: st["audio"][k] for k in ("erle_db", "echo_converged",
                                                    "own_voice_ignored")})
        assert st["audio"]["duplex"] == "full"  # the microphone streamed through the reply
        assert st["wake"]["detections"] == learnt + 1, "the reply's own wake word woke it"
        assert name_server.server.stats.interruptions == 0, "the speaker interrupted itself"
        assert name_server.server.stats.replies == learnt + 1
    finally:
        d.stop()


def test_without_the_canceller_the_same_room_makes_it_interrupt_itself(
        rig: PulseRig, name_server: ServerThread, tmp_path: Path) -> None:
    rig.add_echo(gain=0.5, delay_s=0.03)
    d = DaemonProcess(tmp_path, rig, name_server.url,
                      '[conversation]\nduplex = "full"\n[audio.echo]\nenabled = false\n')
    try:
        d.wait_state("idle", 20)
        pcm, _ = demo_speech()
        rig.feeder.say(pcm)
        d.wait_state("speaking", 15)
        d.wait_state(lambda s: s["state"] != "speaking", 30)
        st = d.status()
        heard_itself = (name_server.server.stats.interruptions > 0
                        or st["wake"]["detections"] > 1)
        assert heard_itself, "the echo path did not reach the microphone"
    finally:
        d.stop()
