"""Timers and alarms end to end: set by voice through the reference server, rung at the
recorded speaker after the link dropped, kept across a restart of `pivox run`, and the
speaker starting on a corrupt state file.

The speaker is a WAV sink; the ring is found in it by matching the ring earcon.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from live import make_config, read_speaker, wait_for, write_wav

from pivox.audio import earcons
from pivox.control import request
from pivox.reference.server import ReferenceServer

ZONE = "Europe/London"


def ring_bursts(wav: Path, rate: int = 48000) -> list[float]:
    """Where in the recording each ring burst starts (seconds)."""
    return [i / rate for i in earcons.onsets("ring", read_speaker(wav), rate, min_score=0.9)]


def extra(tmp: Path) -> str:
    return f'[state]\nfile = "{tmp / "state.json"}"\n[home]\ntimezone = "{ZONE}"\n'


def test_a_timer_set_by_voice_rings_after_the_link_drops(tmp_path: Path, run_daemon) -> None:
    figures: dict[str, float] = {}

    async def main():
        server = ReferenceServer(tool_call=("set_timer", {"seconds": 3, "label": "pasta"}))
        await server.start()

        async def during(run) -> None:
            d = run.daemon
            assert await wait_for(lambda: d.alerts is not None and d.alerts.schedule.timers, 20)
            figures["set"] = time.monotonic()
            await server.stop()  # the link drops mid-reply; the timer is the device's
            figures["link_dropped"] = time.monotonic()
            await wait_for(lambda: not d.session.snapshot().connected, 5)
            assert await wait_for(lambda: d.m.ringing, 10)
            figures["rang"] = time.monotonic()
            figures["link_up_at_ring"] = float(d.session.snapshot().connected)
            await wait_for(lambda: d.player.stats.prompts_played.count("ring") >= 2, 6)
            d.command({"cmd": "timers", "action": "stop"})
            figures["stopped"] = time.monotonic()

        try:
            cfg = make_config(tmp_path, server.url, extra=extra(tmp_path))
            run = await run_daemon(cfg, lambda r: not r.daemon.m.ringing, timeout=5,
                                   during=during)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    calls = [m for m in server.received if "toolResponse" in m]
    (resp,) = calls[0]["toolResponse"]["functionResponses"]
    assert resp["name"] == "set_timer" and "pasta" in resp["response"]["result"]
    assert figures["link_up_at_ring"] == 0.0
    # The daemon's own times: when the link went down, when the timer rang.
    down = next(t for name, t in run.events if name == "LinkDown")
    ring = next(t for name, t in run.events if name == "Ring")
    assert figures["set"] < down < ring, (figures, down, ring)
    assert 2.8 < ring - figures["set"] < 3.3, (figures, ring)
    bursts = ring_bursts(tmp_path / "speaker.wav")
    assert len(bursts) >= 2, bursts
    assert run.final_status["timers"] == [] and run.final_status["ringing"] == []
    print(json.dumps({"set_to_ring_s": round(ring - figures["set"], 2),
                      "link_down_to_ring_s": round(ring - down, 2),
                      "ring_bursts_recorded": len(bursts),
                      "bursts_at_s": [round(b, 2) for b in bursts]}))


def test_the_wake_word_stops_the_ringing_and_starts_nothing(tmp_path: Path, run_daemon
                                                            ) -> None:
    async def main():
        async def during(run) -> None:
            d = run.daemon
            await wait_for(lambda: d.m.state.value == "idle" or d.m.state.value == "offline",
                           10)
            d.alerts.set_timer(1, "tea")
            assert await wait_for(lambda: "ring" in d.player.stats.prompts_played, 5)
            d.command({"cmd": "talk"})  # the talk button, as a wake word would

        cfg = make_config(tmp_path, "ws://127.0.0.1:9", extra=extra(tmp_path))
        return await run_daemon(cfg, lambda r: not r.daemon.m.ringing, timeout=5,
                                during=during)

    run = asyncio.run(main())
    assert not run.daemon.m.ringing
    assert "listening" not in run.states  # the press only stopped the ring
    assert "ring" in run.daemon.player.stats.prompts_played


def test_a_wall_clock_set_forward_under_a_wait_still_rings(tmp_path: Path, run_daemon,
                                                           monkeypatch) -> None:
    """NTP sets the clock at boot while the scheduler waits for a timer 10 min away: the
    timer is now due, and it rings within the recheck period, not 10 min late."""
    from pivox.daemon import alerts
    monkeypatch.setattr(alerts, "RECHECK_S", 0.5)
    seen: dict[str, float] = {}

    async def main():
        async def during(run) -> None:
            d = run.daemon
            await wait_for(lambda: d.m.state.value in ("idle", "offline"), 10)
            d.alerts.set_timer(600, "roast")
            await asyncio.sleep(0.2)  # the scheduler is in its wait
            d.alerts._clock = lambda: time.time() + 601  # the wall clock jumps
            seen["jump"] = time.monotonic()
            if await wait_for(lambda: d.m.ringing, 5):
                seen["rang"] = time.monotonic()
            d.command({"cmd": "timers", "action": "stop"})

        cfg = make_config(tmp_path, "ws://127.0.0.1:9", extra=extra(tmp_path))
        return await run_daemon(cfg, lambda r: not r.daemon.m.ringing, timeout=5,
                                during=during)

    asyncio.run(main())
    assert "rang" in seen, "the timer did not ring within 5 s of the clock jumping past it"
    print(f"\nrang {seen['rang'] - seen['jump']:.2f} s after the clock jumped")


# ------------------------------------------------------------------ across restarts


class ServerThread:
    """The reference server on its own loop, for daemons in other processes."""

    def __init__(self, tool_call: tuple[str, dict]) -> None:
        import threading

        self.server = ReferenceServer(tool_call=tool_call)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def start(tmp: Path, url: str, speaker: str) -> subprocess.Popen[str]:
    cfg = make_config(tmp, url, extra=extra(tmp))
    config = Path(cfg.source)
    config.write_text(config.read_text().replace(str(tmp / "speaker.wav"), str(tmp / speaker)))
    return subprocess.Popen([sys.executable, "-m", "pivox.cli", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def ask(tmp: Path, cmd: str, **kw: object) -> dict:
    return request(str(tmp / "control.sock"), cmd, **kw)


def until(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except OSError:  # the daemon is not listening yet
            pass
        time.sleep(0.1)
    return False


def power_cut(proc: subprocess.Popen[str]) -> str:
    proc.kill()  # SIGKILL: no clean shutdown, as when the plug is pulled
    out, _ = proc.communicate(timeout=20)
    return out


def set_by_voice(tmp: Path, tool_call: tuple[str, dict], kind: str, n: int) -> float:
    """One `pivox run` hears the recorded question; the server answers with `tool_call`;
    the power is cut once the daemon has it. Returns when it was set (epoch)."""
    server = ServerThread(tool_call)
    proc = start(tmp, server.server.url, f"speaker{n}.wav")
    try:
        assert until(lambda: len(ask(tmp, "status")[kind]) >= 1, 30), power_cut(proc)
        set_at = time.time()
        time.sleep(0.3)  # the state file is written off the loop
    finally:
        power_cut(proc)
        server.close()
    return set_at


def test_a_pending_timer_and_an_alarm_ring_after_power_cuts(tmp_path: Path) -> None:
    """An alarm for the next minute and an 8 s timer, each set by voice in its own `pivox
    run` killed with SIGKILL straight after; a third `pivox run`, offline, rings both."""
    zone = ZoneInfo(ZONE)
    alarm_at = (datetime.now(zone) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    set_by_voice(tmp_path, ("set_alarm", {"time": alarm_at.strftime("%H:%M"),
                                          "label": "wake up"}), "alarms", 1)
    set_at = set_by_voice(tmp_path, ("set_timer", {"seconds": 8, "label": "pasta"}),
                          "timers", 2)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert [t["label"] for t in saved["timers"]] == ["pasta"]
    assert [a["label"] for a in saved["alarms"]] == ["wake up"]
    proc = start(tmp_path, "ws://127.0.0.1:9", "speaker3.wav")  # no server: offline
    rang: dict[str, float] = {}
    try:
        def ringing() -> bool:
            for label in ask(tmp_path, "timers")["ringing"]:
                rang.setdefault(label, time.time())
            if rang and time.time() - max(rang.values()) > 1.0:  # a burst played whole
                ask(tmp_path, "timers", action="stop")
            return len(rang) == 2 and not ask(tmp_path, "timers")["ringing"]

        assert until(ringing, alarm_at.timestamp() - time.time() + 10), rang
        time.sleep(1.0)  # the last burst reaches the file
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert 7.0 < rang["pasta"] - set_at < 10.0, (rang, set_at)
    assert 0 <= rang["wake up"] - alarm_at.timestamp() < 2.0, (rang, alarm_at)
    assert "timer 'pasta' rings" in out and "alarm 'wake up' rings" in out, out
    bursts = ring_bursts(tmp_path / "speaker3.wav")
    assert len(bursts) >= 2, bursts
    print(json.dumps({"timer_set_to_ring_s": round(rang["pasta"] - set_at, 2),
                      "ring_bursts_recorded": len(bursts),
                      "alarm": alarm_at.isoformat(), "alarm_late_s":
                      round(rang["wake up"] - alarm_at.timestamp(), 2)}))


# ------------------------------------------------------------------ a corrupt state file

CORRUPT = {"garbage": b"\x00\xffnot json", "truncated": b'{"version": 1, "volume": 0.3, "tim',
           "wrong types": b'{"version": 1, "volume": "loud", "muted": "no", "timers": 3}'}


def test_the_speaker_starts_on_any_corrupt_state_file(tmp_path: Path, run_daemon) -> None:
    """Each case: the daemon starts as usual, the file is moved aside, defaults are used,
    and the next change is saved to a good file again."""
    cases = [*CORRUPT, "directory"]
    seen: dict[str, object] = {}
    for case in cases:
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        state = folder / "state.json"
        if case == "directory":
            state.mkdir()
        else:
            state.write_bytes(CORRUPT[case])

        run = asyncio.run(_start_and_save(folder, run_daemon))
        assert run.final_status["state"] in ("idle", "offline"), case
        aside = list(folder.glob("state.json.corrupt-*"))
        assert len(aside) == 1, (case, list(folder.iterdir()))
        saved = json.loads(state.read_text())
        assert saved["volume"] == 0.45, case
        seen[case] = aside[0].name
    print(json.dumps(seen))


async def _start_and_save(folder: Path, run_daemon) -> object:
    async def during(r) -> None:
        await wait_for(lambda: r.states[-1:] in (["idle"], ["offline"]), 10)
        r.daemon.command({"cmd": "volume", "level": 0.45})
        await wait_for(lambda: (folder / "state.json").is_file(), 5)

    cfg = make_config(folder, "ws://127.0.0.1:9", extra=extra(folder))
    return await run_daemon(cfg, lambda r: (folder / "state.json").is_file(), timeout=5,
                            during=during)


# ------------------------------------------------------------------ announcements


def silent_mic(tmp: Path) -> Path:
    return write_wav(tmp / "silence.wav", bytes(16000 * 2 * 3))


def test_an_announcement_is_said_by_the_model_with_the_link_up(tmp_path: Path, run_daemon
                                                               ) -> None:
    async def main():
        server = ReferenceServer()
        await server.start()

        async def during(run) -> None:
            d = run.daemon
            assert await wait_for(lambda: d.m.link_up, 10)
            d.command({"cmd": "announce", "text": "Dinner is ready"})

        try:
            cfg = make_config(tmp_path, server.url, mic=silent_mic(tmp_path),
                              extra=extra(tmp_path))
            run = await run_daemon(cfg, lambda r: "speaking" in r.states
                                   and r.states[-1] == "idle", timeout=15, during=during)
        finally:
            await server.stop()
        return server, run

    server, run = asyncio.run(main())
    turns = [m["clientContent"] for m in server.received if "clientContent" in m]
    assert len(turns) == 1 and turns[0]["turnComplete"] is True
    text = turns[0]["turns"][0]["parts"][0]["text"]
    assert '"Dinner is ready"' in text and "exactly" in text
    assert run.states[-3:] == ["thinking", "speaking", "idle"]
    assert run.daemon.player.stats.reply_samples > 0  # the model's voice was played
    assert "speech" not in run.daemon.player.stats.prompts_played


def test_offline_an_announcement_is_said_locally_after_the_chime(tmp_path: Path, run_daemon
                                                                 ) -> None:
    async def main():
        async def during(run) -> None:
            await wait_for(lambda: run.states[-1:] == ["offline"], 10)
            run.daemon.command({"cmd": "announce", "text": "Dinner is ready"})

        cfg = make_config(tmp_path, "ws://127.0.0.1:9", mic=silent_mic(tmp_path),
                          extra=extra(tmp_path))
        return await run_daemon(cfg, lambda r: "speech" in r.daemon.player.stats.prompts_played,
                                timeout=15, during=during)

    played = asyncio.run(main()).daemon.player.stats.prompts_played
    assert played[-2:] == ["announce", "speech"], played


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path, run_daemon, capsys) -> None:
    from pivox import cli

    codes: dict[str, int] = {}

    async def main():
        async def during(run) -> None:
            await wait_for(lambda: run.states[-1:] == ["offline"], 10)
            sock = str(tmp_path / "control.sock")
            for name, argv in {"cancel": ["timers", "cancel", "nothing"],
                               "play": ["play", str(tmp_path / "missing.wav")],
                               "list": ["alarms", "list", "--json"],
                               "play_ok": ["play", str(tmp_path / "silence.wav"), "--now"]
                               }.items():
                codes[name] = await asyncio.to_thread(cli.main, [*argv, "--socket", sock])

        cfg = make_config(tmp_path, "ws://127.0.0.1:9", mic=silent_mic(tmp_path),
                          extra=extra(tmp_path))
        return await run_daemon(cfg, lambda r: "sound" in r.daemon.player.stats.prompts_played,
                                timeout=15, during=during)

    run = asyncio.run(main())
    out = capsys.readouterr()
    assert codes == {"cancel": 1, "play": 1, "list": 0, "play_ok": 0}, codes
    assert run.daemon.player.stats.prompts_played[-2:] == ["announce", "sound"]
    errors = out.err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("pivox: ") for e in errors), errors
    assert "no timer named 'nothing'" in errors[0]
    assert json.loads(out.out) == {"alarms": [], "ringing": []}
