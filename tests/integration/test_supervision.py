"""No part of `pivox run` can die or wedge unnoticed.

The real daemon runs as systemd would start it (NOTIFY_SOCKET bound here, WatchdogSec=1 s),
with the debug fault hook on. For every part, a kill and a wedge: a kill of a vital part
ends the process non-zero with one journal line naming the part, a kill of an LED driver
or the control socket restarts that part alone and says so, and any wedge stops the
WATCHDOG=1 pings, so systemd would restart the service within WatchdogSec. A stall (one
coroutine stops, the loop runs on) is told by the part's own check: the link's and the timer
scheduler's, which must be back from its wait when it said it would be.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from live import free_port, make_config, write_wav
from test_systemd import WATCHDOG_S, NotifySocket, ServerThread, start_daemon, stop_daemon

from pivox.control import request

VITAL = ("capture", "playback", "link", "pump", "deadlines", "alerts")
RESTARTABLE = ("leds", "control", "netwatch")


def _start(tmp_path: Path, notify: NotifySocket, extra: str = "", url: str = "",
           mic: Path | None = None):
    make_config(tmp_path, url or f"ws://127.0.0.1:{free_port()}/nothing-listens", mic=mic,
                extra='[leds]\nkind = "none"\n' + extra)
    log = tmp_path / "daemon.log"
    proc = start_daemon(tmp_path / "pivox.toml", notify, log, env={"PIVOX_FAULT_HOOK": "1"})
    notify.wait(lambda: notify.lines("READY"), 30, "READY=1")
    notify.wait(lambda: len(pings(notify)) >= 3, 20, "WATCHDOG=1 pings")
    return proc, log, str(tmp_path / "control.sock")


def pings(notify: NotifySocket) -> list[float]:
    return [t for t, v in notify.lines("WATCHDOG") if v == "1"]


def _fault(sock: str, part: str, mode: str) -> float:
    at = time.monotonic()
    try:
        reply = request(sock, "fault", part=part, mode=mode)
        assert reply.get("ok"), reply
    except (OSError, ValueError):  # a killed control socket may not answer
        assert part == "control"
    return at


@pytest.mark.parametrize("part", VITAL)
def test_a_vital_part_that_dies_ends_the_process_non_zero(tmp_path: Path, notify, part: str
                                                          ) -> None:
    proc, log, sock = _start(tmp_path, notify)
    try:
        at = _fault(sock, part, "kill")
        code = proc.wait(timeout=15)
    finally:
        stop_daemon(proc)
    text = log.read_text()
    late = [round(t - at, 2) for t in pings(notify) if t > at + 0.2]
    assert late == [], f"WATCHDOG=1 after {part} died: {late}"
    assert code == 1, text[-2000:]
    lines = [ln for ln in text.splitlines() if f"{part} died: InjectedFault" in ln]
    assert len(lines) == 1, text[-2000:]


@pytest.mark.parametrize("part", (*VITAL, *RESTARTABLE))
def test_a_wedged_part_stops_the_watchdog(tmp_path: Path, notify, part: str) -> None:
    proc, log, sock = _start(tmp_path, notify)
    try:
        at = _fault(sock, part, "wedge")
        time.sleep(WATCHDOG_S + 1.0)
        late = [round(t - at, 2) for t in pings(notify) if t > at + WATCHDOG_S]
        alive = proc.poll() is None
    finally:
        stop_daemon(proc)
    assert late == [], f"WATCHDOG=1 still sent {late} s after {part} wedged"
    assert alive, log.read_text()[-2000:]  # wedged, not dead: only the pings tell


@pytest.mark.parametrize("part", RESTARTABLE)
def test_a_nicety_that_dies_restarts_alone(tmp_path: Path, notify, part: str) -> None:
    proc, log, sock = _start(tmp_path, notify)
    try:
        at = _fault(sock, part, "kill")
        notify.wait(lambda: [t for t in pings(notify) if t > at + 2 * WATCHDOG_S], 10,
                    "pings after the restart")
        deadline = time.monotonic() + 10
        while True:
            try:
                status = request(sock, "status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert proc.poll() is None
    finally:
        code = stop_daemon(proc)
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert f"{part} failed (InjectedFault" in text and "restarting it" in text, text[-2000:]
    assert status["health"]["restarts"] == {part: 1}, status["health"]


def _timer_due_in(tmp_path: Path, seconds: float) -> str:
    """A state file holding a timer due `seconds` from now; the config that reads it."""
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 1, "timers": [
        {"label": "pasta", "seconds": 600, "due": time.time() + seconds}]}))
    return f'[state]\nfile = "{state}"\n'


def _quiet_since(notify: NotifySocket, at: float, timeout: float) -> float | None:
    """When the pings stopped after `at` (none for three watchdog periods), or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        last = max([at, *pings(notify)])
        if time.monotonic() - last > 3 * WATCHDOG_S:
            return last
        time.sleep(0.1)
    return None


def test_a_timer_coming_due_keeps_the_watchdog_fed(tmp_path: Path, notify) -> None:
    """The scheduler's own promise (back from its wait by the due time) is kept: a timer
    that rings is no stall."""
    proc, log, _ = _start(tmp_path, notify, _timer_due_in(tmp_path, 3.0))
    try:
        stopped = _quiet_since(notify, time.monotonic(), 12.0)
        alive = proc.poll() is None
    finally:
        stop_daemon(proc)
    text = log.read_text()
    assert "'pasta' rings" in text, text[-2000:]
    assert stopped is None and alive, text[-2000:]


def test_a_stalled_timer_scheduler_stops_the_watchdog(tmp_path: Path, notify) -> None:
    """The scheduler stops in its wait while the loop runs on: the pings stop soon after
    the timer it holds was due, and the journal says why."""
    proc, log, sock = _start(tmp_path, notify, _timer_due_in(tmp_path, 3.0))
    try:
        at = _fault(sock, "alerts", "stall")
        stopped = _quiet_since(notify, at, 20.0)
        alive = proc.poll() is None
    finally:
        stop_daemon(proc)
    text = log.read_text()
    assert stopped is not None, "WATCHDOG=1 kept coming after the scheduler stalled"
    assert alive, text[-2000:]  # stalled, not dead: only the pings tell
    assert "alerts: no timer scheduler wake-up" in text, text[-2000:]
    assert "'pasta' rings" not in text, text[-2000:]


def test_the_fault_hook_is_off_unless_enabled(tmp_path: Path, notify) -> None:
    make_config(tmp_path, f"ws://127.0.0.1:{free_port()}/nothing-listens")
    log = tmp_path / "daemon.log"
    proc = start_daemon(tmp_path / "pivox.toml", notify, log)
    try:
        notify.wait(lambda: notify.lines("READY"), 30, "READY=1")
        reply = request(str(tmp_path / "control.sock"), "fault", part="capture", mode="kill")
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        code = stop_daemon(proc)
    assert not reply["ok"] and "unknown command" in reply["error"], reply
    assert code == 0


@pytest.mark.parametrize("part", ("pump", "deadlines"))
def test_a_stalled_part_stops_the_watchdog_once_it_has_work(tmp_path: Path, notify,
                                                            part: str) -> None:
    """Stalled while idle, the frame pump and the deadline task have nothing to fall
    behind on; asked to talk, the speaker gives them work they never do."""
    # a quiet room: no wake word starts anything
    quiet = write_wav(tmp_path / "quiet.wav", bytes(16000 * 2 * 30))
    server = ServerThread()
    proc, log, sock = _start(tmp_path, notify, url=server.server.url, mic=quiet)
    try:
        at = _fault(sock, part, "stall")
        time.sleep(3 * WATCHDOG_S)
        idle_pings = [t for t in pings(notify) if t > at + 2 * WATCHDOG_S]
        request(sock, "talk")
        stopped = _quiet_since(notify, time.monotonic(), 15.0)
        alive = proc.poll() is None
    finally:
        stop_daemon(proc)
        server.stop()
    text = log.read_text()
    assert idle_pings, text[-2000:]  # nothing to do is no stall
    assert stopped is not None, f"WATCHDOG=1 kept coming after {part} stalled"
    assert alive, text[-2000:]
    assert f"watchdog withheld: {part}:" in text, text[-2000:]


def test_a_stalled_link_stops_the_watchdog(tmp_path: Path, notify) -> None:
    """The link task stops inside a step while the loop runs on: the speaker would stay
    offline or deaf without an error, so the pings stop and the journal says why."""
    server = ServerThread()
    proc, log, sock = _start(tmp_path, notify, url=server.server.url)
    try:
        at = _fault(sock, "link", "stall")
        request(sock, "talk")  # the speaker needs its link now
        stopped = _quiet_since(notify, at, 20.0)
        alive = proc.poll() is None
    finally:
        stop_daemon(proc)
        server.stop()
    text = log.read_text()
    assert stopped is not None, "WATCHDOG=1 kept coming after the link stalled"
    assert alive, text[-2000:]
    assert "watchdog withheld: link: no link step finished" in text, text[-2000:]
