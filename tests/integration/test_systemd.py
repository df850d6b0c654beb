"""The service manager's view: `pivox run` as a process, with NOTIFY_SOCKET bound here.

READY=1 (with STATUS=) once audio and the wake engine run, STATUS= for every state, and
WATCHDOG=1 only while microphone frames arrive: a microphone that stops delivering (an ALSA
`file` device reading a FIFO nobody writes) stops the pings while the process and its loop
are alive, and they come back with the audio. Also: the unit file passes
`systemd-analyze verify` with nothing on stderr, and journald logging carries PIVOX_ fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live import free_port, make_config

from pivox.control import request
from pivox.hw import journal
from pivox.hw.systemd import Notifier
from pivox.reference.server import ReferenceServer

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "pivox.service"
WATCHDOG_USEC = 1_000_000
WATCHDOG_S = WATCHDOG_USEC / 1e6


class NotifySocket:
    """What systemd would receive: sd_notify datagrams, each kept with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._items: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._items.append((time.monotonic(), data.decode()))

    def datagrams(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._items)

    def lines(self, key: str) -> list[tuple[float, str]]:
        """(time, value) of every `key=value` line received, in order."""
        out = []
        for t, text in self.datagrams():
            for line in text.splitlines():
                k, _, v = line.partition("=")
                if k == key:
                    out.append((t, v))
        return out

    def wait(self, pred: Callable[[], Any], timeout: float, what: str) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = pred()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; received {self.datagrams()}")

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        self._thread.join(timeout=2)


class ServerThread:
    """The reference server on a loop of its own, as a separate machine would be."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = ReferenceServer()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def start_daemon(config: Path, notify: NotifySocket, log: Path,
                 env: dict[str, str] | None = None, journal_stream: bool = False
                 ) -> subprocess.Popen:
    """`pivox run` as systemd starts it. With `journal_stream`, $JOURNAL_STREAM names the
    log file given as its stderr, as systemd names the journal's stream."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID", "PIVOX_LOG")}
    base.update({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    base.update(env or {})
    with open(log, "wb") as out:
        if journal_stream:
            st = os.fstat(out.fileno())
            base["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        return subprocess.Popen([sys.executable, "-m", "pivox", "run", "--config", str(config)],
                                env=base, stdout=out, stderr=subprocess.STDOUT)


def stop_daemon(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        return -9


def state_of(status_line: str) -> str:
    return status_line.partition(":")[0]


def test_ready_status_and_watchdog_follow_the_daemon(tmp_path: Path, notify) -> None:
    server = ServerThread()
    make_config(tmp_path, server.server.url)
    log = tmp_path / "daemon.log"
    proc = start_daemon(tmp_path / "pivox.toml", notify, log)
    try:
        ready = notify.wait(lambda: [d for d in notify.datagrams() if "READY=1" in d[1]],
                            30, "READY=1")
        t_ready, text = ready[0]
        assert re.search(r"^STATUS=\S", text, re.M), text  # READY carries the state
        # The recorded microphone says the wake word: the states a user would see, in order.
        def reached_idle_after_speaking() -> bool:
            states = [state_of(v) for _, v in notify.lines("STATUS")]
            return "speaking" in states and states[-1] == "idle"
        notify.wait(reached_idle_after_speaking, 40, "STATUS=speaking then idle")
        states = [state_of(v) for _, v in notify.lines("STATUS")]
        seen = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
        assert seen[0] == "idle", seen
        assert seen.index("listening") < seen.index("speaking"), seen
        assert seen[-1] == "idle", seen
        pings = [t for t, v in notify.lines("WATCHDOG") if v == "1" and t >= t_ready]
        assert len(pings) >= 4, f"too few WATCHDOG=1 after READY: {len(pings)}"
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        # The daemon pings every WATCHDOG_USEC/2 while frames arrive; systemd kills at
        # WATCHDOG_USEC. Twice that is a generous bound for a loaded test machine.
        assert max(gaps) < 2 * WATCHDOG_S, gaps
    finally:
        code = stop_daemon(proc)
        server.stop()
    assert code == 0, log.read_text()[-3000:]
    assert notify.lines("STOPPING"), "no STOPPING=1 on SIGTERM"
    # Outside the journal, plain log lines on stderr.
    assert re.search(r" INFO pivox: state idle -> listening", log.read_text()), log.read_text()


def test_logs_go_to_the_journal_when_stderr_is_its_stream(tmp_path: Path, notify) -> None:
    """Under systemd, records go to journald's socket (with PIVOX_ fields), not stderr.
    No journald runs here, so they are dropped: stderr stays free of log lines."""
    make_config(tmp_path, f"ws://127.0.0.1:{free_port()}/nothing-listens")
    log = tmp_path / "daemon.log"
    proc = start_daemon(tmp_path / "pivox.toml", notify, log, journal_stream=True)
    try:
        notify.wait(lambda: notify.lines("READY"), 30, "READY=1")
        notify.wait(lambda: len(notify.lines("STATUS")) >= 3, 20, "a few STATUS= lines")
    finally:
        code = stop_daemon(proc)
    assert code == 0
    assert not re.search(r" (INFO|WARNING) pivox", log.read_text()), log.read_text()[-2000:]


class FifoMic:
    """A microphone that can be made to stop delivering: ALSA's `file` plugin reading a
    FIFO fed whole 20 ms periods on a clock. Pausing keeps the FIFO open, so reads block
    (closing it would make the plugin repeat stale data instead)."""

    PERIOD = 320 * 2  # 20 ms of 16 kHz s16 mono

    def __init__(self, root: Path) -> None:
        self.fifo = root / "mic.fifo"
        os.mkfifo(self.fifo)
        self.asoundrc = root / "asoundrc"
        self.asoundrc.write_text(
            f'pcm.pivox_fifo_mic {{\n  type file\n  slave.pcm "null"\n'
            f'  infile "{self.fifo}"\n  file "/dev/null"\n  format "raw"\n}}\n')
        self.env = {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{self.asoundrc}"}
        self.feeding = threading.Event()
        self.feeding.set()
        self.periods = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = os.open(self.fifo, os.O_WRONLY)  # blocks until the daemon opens the device
        try:
            start, n = time.monotonic(), 0
            while not self._stop.is_set():
                if not self.feeding.is_set():
                    time.sleep(0.02)
                    start, n = time.monotonic(), 0
                    continue
                os.write(fd, bytes(self.PERIOD))
                self.periods += 1
                n += 1
                delay = start + n * 0.02 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except OSError:
            pass
        finally:
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        if self.periods == 0:  # the daemon never opened it: unblock our open()
            with contextlib.suppress(OSError):
                os.close(os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK))
        self._thread.join(timeout=5)


def test_watchdog_stops_while_the_microphone_stalls(tmp_path: Path, notify) -> None:
    mic = FifoMic(tmp_path)
    sock = tmp_path / "control.sock"
    config = tmp_path / "pivox.toml"
    config.write_text(f"""
[audio.capture]
device = "pivox_fifo_mic"
[audio.playback]
device = "wav:{tmp_path / 'speaker.wav'}"
[link]
url = "ws://127.0.0.1:{free_port()}/nothing-listens"
[control]
socket = "{sock}"
""")
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, notify, log, env=mic.env)
    try:
        notify.wait(lambda: notify.lines("READY"), 30, "READY=1")

        def pings() -> list[float]:
            return [t for t, v in notify.lines("WATCHDOG") if v == "1"]

        notify.wait(lambda: len(pings()) >= 3, 20, "WATCHDOG=1 while audio arrives")

        mic.feeding.clear()  # the microphone stops delivering; the process lives on
        stalled_at = time.monotonic()
        quiet_from = stalled_at + 2 * WATCHDOG_S
        time.sleep(quiet_from - time.monotonic() + 2 * WATCHDOG_S)
        late = [t - stalled_at for t in pings() if t > quiet_from]
        assert late == [], f"WATCHDOG=1 still sent {late} s after the microphone stalled"
        # ... while the process and its loop are alive and answering.
        assert proc.poll() is None, log.read_text()[-3000:]
        status = request(str(sock), "status", timeout=5)
        assert status["ok"] and status["state"] in ("idle", "offline"), status  # no server
        frames_while_stalled = status["audio"]["frames"]

        mic.feeding.set()  # audio again: the pings come back without a restart
        resumed_at = time.monotonic()
        notify.wait(lambda: [t for t in pings() if t > resumed_at], 15,
                    "WATCHDOG=1 after the microphone came back")
        after = request(str(sock), "status", timeout=5)
        assert after["audio"]["frames"] > frames_while_stalled
        assert after["audio"]["overruns"] >= 1  # the stall is counted, not hidden
    finally:
        code = stop_daemon(proc)
        mic.close()
    assert code == 0, log.read_text()[-3000:]


# ---------------------------------------------------------------- the unit file


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """verify must be silent: it exits 0 with warnings on stderr for unknown keys or bad
    values. ExecStart must name an existing binary for that, so a copy points at ours."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed (scripts/bootstrap installs systemd)")
    text = UNIT.read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", text, re.M)
    assert exec_start and exec_start.group(1) == "/opt/pivox/venv/bin/pivox"
    ours = Path(sys.executable).with_name("pivox")
    assert ours.exists(), f"{ours} is missing: is the project installed in the venv?"
    copy = tmp_path / "pivox.service"
    copy.write_text(text.replace(exec_start.group(0), f"ExecStart={ours}", 1))
    proc = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # A unit with a mistake in it is caught the same way (the lint can fail).
    bad = tmp_path / "bad.service"
    bad.write_text(copy.read_text().replace("[Service]\n", "[Service]\nWatchdogSecs=10\n", 1))
    proc = subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert "WatchdogSecs" in proc.stderr


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_file_runs_the_daemon_as_a_watched_unprivileged_service() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) >= 5
    assert s["User"] == ["pivox"]
    assert set(s["SupplementaryGroups"][0].split()) == {"audio", "gpio", "spi"}
    assert s["StateDirectory"] == ["pivox"] and s["ConfigurationDirectory"] == ["pivox"]
    assert s["LoadCredential"] == ["gemini_api_key:/etc/pivox/credentials/gemini_api_key"]
    assert s["ExecStart"][0].endswith("--config /etc/pivox/pivox.toml")
    # Hardening that leaves audio and GPIO working.
    assert s.get("PrivateDevices", ["no"]) == ["no"]
    assert s["DevicePolicy"] == ["closed"]
    allowed = " ".join(s["DeviceAllow"])
    for device in ("char-alsa", "char-gpiochip", "char-spi"):
        assert device in allowed
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "ProtectKernelModules"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["CapabilityBoundingSet"] == [""]


# ---------------------------------------------------------------- sd_notify and journald


def test_notifier_watchdog_is_ours_only(monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Notifier().watchdog_s == 4.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier().watchdog_s == 4.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert Notifier().watchdog_s == 0.0
    monkeypatch.setenv("WATCHDOG_USEC", "garbage")
    monkeypatch.delenv("WATCHDOG_PID")
    assert Notifier().watchdog_s == 0.0
    n = Notifier()
    n.ready("idle")  # an unreachable socket is counted, never raised into the daemon
    n.watchdog()
    assert n.errors == 2


def test_journal_is_chosen_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        st = os.fstat(f.fileno())
        ours = f"{st.st_dev}:{st.st_ino}"
        assert journal.under_journal({"JOURNAL_STREAM": ours}, f.fileno())
        assert not journal.under_journal({"JOURNAL_STREAM": "1:2"}, f.fileno())
        assert not journal.under_journal({}, f.fileno())
        assert journal.under_journal({"PIVOX_LOG": "journal"}, f.fileno())
        assert not journal.under_journal({"PIVOX_LOG": "stderr", "JOURNAL_STREAM": ours},
                                         f.fileno())
    socket_there = os.path.exists(journal.JOURNAL_SOCKET)
    assert journal.under_journal({"INVOCATION_ID": "abc"}) == socket_there


def test_journal_records_carry_pivox_fields() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        chosen = journal.setup("info", env={"PIVOX_LOG": "journal"},
                               send=lambda msg, **kw: sent.append((msg, kw)))
        assert chosen == "journal"
        journal.set_context(PIVOX_STATE="listening", PIVOX_SESSION="7")
        log = logging.getLogger("pivox")
        log.warning("link problem: %s", "timed out", extra={"PIVOX_ERROR_KIND": "link"})
        journal.set_context(PIVOX_STATE=None, PIVOX_SESSION=None)
        log.info("state %s -> %s", "idle", "muted")
        log.debug("not at info level")
        assert journal.flush()  # records are written by the journal's own thread
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert len(sent) == 2
    msg, fields = sent[0]
    assert msg == "pivox: link problem: timed out"
    assert fields["PRIORITY"] == "4" and fields["SYSLOG_IDENTIFIER"] == "pivox"
    assert fields["PIVOX_ERROR_KIND"] == "link"
    assert fields["PIVOX_STATE"] == "listening" and fields["PIVOX_SESSION"] == "7"
    assert all(re.fullmatch(r"[A-Z0-9_]+", k) for k in fields), fields.keys()
    assert "PIVOX_STATE" not in sent[1][1] and sent[1][1]["PRIORITY"] == "6"
    with pytest.raises(ValueError):
        journal.set_context(state="idle")
