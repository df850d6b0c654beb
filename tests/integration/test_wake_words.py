"""Wake words in the running daemon: a stop word said over a reply ends it, and a wake
engine that cannot start leaves the speaker listening for the default word."""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

import numpy as np
from live import DATA, demo_manifest, make_config, write_wav

from pivox.cli import main as cli_main
from pivox.reference.server import ReferenceServer

RATE = 16000
FIXTURES = Path(__file__).parents[1] / "fixtures"


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def room(seconds: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 33, round(seconds * RATE))
    return np.round(noise).astype("<i2")


def write(path: Path, *parts: np.ndarray) -> Path:
    return write_wav(path, np.concatenate(parts), RATE)


def test_a_stop_word_over_the_reply_ends_it_at_once(tmp_path: Path, run_daemon) -> None:
    demo = demo_manifest()
    # "Okay Nabu, what's the weather like today?", then "Hey Jarvis" 2.2 s after the
    # question, while the reply (about 4 s, starting about 1 s after it) is playing.
    gap = 2.2 - (demo["duration_s"] - demo["speech_end_s"])
    mic = write(tmp_path / "mic.wav", samples(DATA / "demo_mic.wav"), room(gap, 1),
                samples(FIXTURES / "stop_hey_jarvis.wav"), room(1.0, 2))

    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url, mic=mic,
                              extra='[wake]\nstop_keyword = "hey_jarvis"\n'
                                    '[conversation]\nduplex = "half"\n')
            run = await run_daemon(cfg, lambda r: "speaking" in r.states
                                   and r.states[-1] == "idle", timeout=30)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    names = [n for n, _ in run.events]
    assert "StopSpoken" in names, names
    assert names.count("WakeDetected") == 1  # the stop word is not a wake word
    assert run.states[-2:] == ["speaking", "idle"]
    # The reply was cut short: well under what the server sent.
    stats = run.daemon.player.stats
    assert stats.reply_samples / 48000 < 3.5, stats
    assert server.stats.interruptions == 0  # the speaker stopped itself; no server VAD
    assert run.final_status["wake"]["stop_keywords"] == ["hey_jarvis"]


def test_porcupine_without_a_key_still_wakes_on_the_default_word(
        tmp_path: Path, run_daemon, monkeypatch, caplog, capsys) -> None:
    monkeypatch.delenv("PICOVOICE_ACCESS_KEY", raising=False)
    said: dict = {}

    async def ask_status(run) -> None:
        await asyncio.sleep(1.0)
        said["rc"] = await asyncio.to_thread(
            cli_main, ["status", "--socket", str(tmp_path / "control.sock")])

    async def main():
        server = ReferenceServer()
        await server.start()
        try:
            cfg = make_config(tmp_path, server.url,
                              extra='[wake]\nengine = "porcupine"\nkeyword = "computer"\n')
            return await run_daemon(cfg, lambda r: "speaking" in r.states
                                    and r.states[-1] == "idle", timeout=30,
                                    during=ask_status)
        finally:
            await server.stop()

    with caplog.at_level(logging.ERROR, "pivox.wake"):
        run = asyncio.run(main())
    wake = run.final_status["wake"]
    assert wake["engine"] == "micro" and wake["keywords"] == ["okay_nabu"]
    assert "PICOVOICE_ACCESS_KEY" in wake["fallback"]
    assert "WakeDetected" in [n for n, _ in run.events]
    assert sum("porcupine cannot start" in r.getMessage() for r in caplog.records) == 1
    out = capsys.readouterr().out
    assert said["rc"] == 0 and "wake:     micro/okay_nabu" in out
    assert "FALLBACK: no Porcupine AccessKey: set $PICOVOICE_ACCESS_KEY" in out
