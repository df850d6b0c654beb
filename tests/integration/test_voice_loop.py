"""The whole voice loop, end to end, over real websockets against the reference server."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
from google.genai import types
from live import (
    DATA,
    LIVE_PATH,
    demo_manifest,
    free_port,
    make_config,
    read_speaker,
    wait_for,
    write_wav,
)

from pivox.core.formats import UPLINK_MS
from pivox.core.linkpolicy import Params
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


def _question_right_after_wake(tmp: Path) -> tuple[Path, np.ndarray, float]:
    """The demo recording with the pause after "Okay Nabu" cut out: the question's first word
    starts as the wake word ends, before any engine can have heard the wake word."""
    m = demo_manifest()
    with wave.open(str(DATA / "demo_mic.wav")) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert rate == 16000
    end, start = int(m["keyword_end_s"] * rate), int(m["speech_start_s"] * rate)
    cut = np.concatenate([pcm[:end], pcm[start:]])
    path = write_wav(tmp / "wake_then_question.wav", cut, rate)
    return path, cut.astype(np.float32), end / rate


def _where_in(recording: np.ndarray, part: np.ndarray) -> tuple[float, float]:
    """Where `part` starts in `recording` (seconds) and how well it matches there (0..1)."""
    n = len(recording) + len(part)
    xc = np.fft.irfft(np.fft.rfft(recording, n) * np.conj(np.fft.rfft(part, n)), n)
    xc = xc[: len(recording) - len(part) + 1]
    energy = np.convolve(recording ** 2, np.ones(len(part)), "valid")
    score = xc / np.sqrt(np.maximum(energy, 1e-9) * float(part @ part))
    lag = int(np.argmax(score))
    return lag / 16000, float(score[lag])


def test_preroll_keeps_the_words_before_the_stream_opened(tmp_path: Path, run_daemon) -> None:
    """The question starts right after the wake word: the server still gets its first words,
    because the stream opens with the audio from before the wake event (the pre-roll)."""
    mic, recording, speech_start_s = _question_right_after_wake(tmp_path)

    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url, mic=mic)
            run = await run_daemon(cfg, lambda r: "thinking" in r.states
                                   or "speaking" in r.states)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    assert "WakeDetected" in [n for n, _ in run.events]
    audio = [m for m in server.received if "audio" in m.get("realtimeInput", {})]
    sizes = {len(lc.b64decode_any(m["realtimeInput"]["audio"]["data"])) for m in audio}
    assert all(n % 640 == 0 and n <= 32 * UPLINK_MS for n in sizes), sizes  # whole frames
    heard = np.frombuffer(b"".join(lc.b64decode_any(m["realtimeInput"]["audio"]["data"])
                                   for m in audio), dtype="<i2").astype(np.float32)
    assert len(heard) >= 16000  # a second at least: the pre-roll and the question
    first_s, match = _where_in(recording, heard[:8000])  # the first half second sent
    assert match > 0.8, f"the audio sent is not the recording (match {match:.2f})"
    # The first word starts at speech_start_s, some 200 ms before the wake event: less than
    # a frame of it may be missing (the stream may open where the keyword ends, not before).
    lead_ms = (speech_start_s - first_s) * 1000
    frame_ms, preroll_ms = run.daemon.cfg.audio.frame_ms, run.daemon.cfg.audio.preroll_ms
    assert lead_ms > -frame_ms, f"the first {-lead_ms:.0f} ms of the question were clipped"
    assert lead_ms <= preroll_ms, f"{lead_ms:.0f} ms sent before the question"


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
        # Once the server is back, the link's next try may be as far off as its backoff's
        # cap (a probe of the endpoint usually cuts that short, but the cap is the bound):
        # wait that long, and a little more for the handshake.
        run = await run_daemon(cfg, lambda r: r.daemon.m.state.value == "idle"
                               and r.daemon.m.link_up, timeout=Params.cap_s + 5,
                               during=during)
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
