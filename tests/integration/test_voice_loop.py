"""The whole voice loop, end to end, over real websockets against the reference server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from google.genai import types
from live import LIVE_PATH, free_port, make_config, read_speaker, wait_for

from pivox.link import codec as lc
from pivox.reference.server import ReferenceServer


def validate_client_message(msg: dict) -> None:
    """The SDK's own client types accept every message the device sent."""
    assert len(msg) == 1, msg.keys()
    if "setup" in msg:
        setup = dict(msg["setup"])
        assert setup.pop("model").startswith("models/")
        gen = setup.pop("generationConfig", {})
        types.LiveConnectConfig.model_validate({**setup, **gen})
    else:
        types.LiveClientMessage.model_validate(msg)


def test_wake_question_reply_end_to_end(tmp_path: Path, run_daemon) -> None:
    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url)
            run = await run_daemon(cfg, lambda r: "speaking" in r.states
                                   and r.states[-1] == "idle")
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    names = [n for n, _ in run.events]
    assert "WakeDetected" in names
    # States in the order a user sees them on the LEDs.
    visited = [s for i, s in enumerate(run.states) if i == 0 or run.states[i - 1] != s]
    assert visited[:3] == ["booting", "idle", "listening"]
    assert visited[-2:] == ["speaking", "idle"]
    # The wire: setup first, and every message acceptable to Google's SDK types.
    assert next(iter(server.received[0])) == "setup"
    for msg in server.received:
        validate_client_message(msg)
    audio = [m for m in server.received if "realtimeInput" in m
             and "audio" in m["realtimeInput"]]
    sent = sum(len(lc.b64decode_any(m["realtimeInput"]["audio"]["data"])) for m in audio)
    assert sent >= 16000 * 2 * 1.5  # pre-roll plus the question: more than 1.5 s of audio
    # The reply reached the speaker: the recorded output holds seconds of real audio.
    out = read_speaker(tmp_path / "speaker.wav")
    loud = np.abs(out) > 500
    assert loud.sum() / 48000 > 0.8
    stats = run.daemon.player.stats
    assert stats.reply_samples / 48000 > 1.0
    assert "wake" in stats.prompts_played


def test_preroll_keeps_the_words_before_the_stream_opened(tmp_path: Path, run_daemon) -> None:
    """The first audio on the wire starts before the wake event: nothing is clipped."""

    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url)
            run = await run_daemon(cfg, lambda r: "thinking" in r.states
                                   or "speaking" in r.states)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    first = next(m for m in server.received if "realtimeInput" in m)
    pcm = lc.b64decode_any(first["realtimeInput"]["audio"]["data"])
    preroll_frames = run.daemon.cfg.audio.preroll_ms // run.daemon.cfg.audio.frame_ms
    audio = [m for m in server.received if "audio" in m.get("realtimeInput", {})]
    assert len(audio) >= preroll_frames
    assert len(pcm) == 640  # 20 ms frames


def test_offline_wakes_says_so_retries_and_recovers(tmp_path: Path, run_daemon) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}{LIVE_PATH}"

    async def main():
        holder: dict = {}

        async def during(run):
            played = await wait_for(lambda: run.daemon.player is not None
                                    and "offline" in run.daemon.player.stats.prompts_played,
                                    15)
            holder["played"] = played
            holder["server"] = ReferenceServer(port=port)
            await holder["server"].start()

        cfg = make_config(tmp_path, url)
        run = await run_daemon(cfg, lambda r: r.daemon.m.state.value == "idle"
                               and r.daemon.m.link_up, timeout=15, during=during)
        await holder["server"].stop()
        return holder, run

    holder, run = asyncio.run(main())
    assert holder["played"], "the offline prompt was not played"
    assert "offline" in run.states
    assert run.states[-1] == "idle" and run.daemon.m.link_up, "did not recover by itself"
    assert run.final_status["link"]["connected"]


def test_status_never_contains_the_api_key(tmp_path: Path, run_daemon, monkeypatch) -> None:
    secret = "AIzaSy-test-secret-0123456789"
    monkeypatch.setenv("GEMINI_API_KEY", secret)

    async def main():
        server = ReferenceServer(api_key=secret)
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url)
            return await run_daemon(cfg, lambda r: r.daemon.m.link_up, timeout=10)
        finally:
            await server.stop()

    run = asyncio.run(main())
    assert run.daemon.m.link_up  # the key went in the header and was accepted
    assert run.final_status["link"]["connected"]
    assert secret not in json.dumps(run.final_status)
