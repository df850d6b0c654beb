"""A missing speaker puts the speaker in its error state, with the reason, and it comes
back by itself when the device does (the microphone side is covered by the HIL tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from live import make_config, run_daemon, wait_for

from pivox.audio.base import DeviceError
from pivox.audio.wavfile import WavSink
from pivox.reference.server import ReferenceServer


def test_missing_speaker_is_an_error_then_recovers(tmp_path: Path) -> None:
    plugged = {"in": False}

    def open_sink() -> WavSink:
        if not plugged["in"]:
            raise DeviceError("speaker 'plughw:CARD=sndrpihifiberry': No such device")
        return WavSink(tmp_path / "speaker.wav", 48000)

    async def main():
        server = ReferenceServer()
        await server.start()
        seen: dict = {}

        async def during(run):
            d = run.daemon
            seen["error"] = await wait_for(lambda: d.m.state.value == "error", 10)
            seen["reason"] = d.m.reason
            plugged["in"] = True
            seen["back"] = await wait_for(lambda: d.m.state.value == "idle", 10)
            seen["states"] = list(run.states)

        try:
            cfg = make_config(tmp_path, server.url,
                              mic=Path(__file__).parents[1] / "fixtures"
                              / "wake_negative_london.wav")
            await run_daemon(cfg, lambda r: "back" in seen, timeout=20, during=during,
                             sink=open_sink)
        finally:
            await server.stop()
        return seen

    seen = asyncio.run(main())
    assert seen["error"] and "sndrpihifiberry" in seen["reason"], seen
    assert seen["back"], "did not recover when the speaker came back"
