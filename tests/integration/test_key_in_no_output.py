"""The API key never appears in anything a full run prints: the daemon's log at debug
level through a conversation and a dropped connection, `pivox status`, `pivox diag`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

from live import DATA

from pivox.control import request
from pivox.reference.server import Faults, ReferenceServer

KEY = "AIzaSyD-full-run-secret-0123456789abcdef"


def test_the_key_appears_in_no_output(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = ReferenceServer(api_key=KEY, faults=Faults(drop_after_s=3.0))
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    key_file = tmp_path / "gemini_api_key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    sock = tmp_path / "control.sock"
    cfg = tmp_path / "pivox.toml"
    cfg.write_text(f"""
[audio.capture]
device = "wav:{DATA / 'demo_mic.wav'}"
[audio.playback]
device = "wav:{tmp_path / 'speaker.wav'}"
[link]
url = "{server.url}?key={KEY}"
api_key_file = "{key_file}"
transcripts = true
[control]
socket = "{sock}"
[log]
level = "debug"
""")
    outputs: list[str] = []
    # To a file, not a pipe: a debug log nobody reads until the end would fill a pipe
    # and block the daemon's loop.
    log_file = open(tmp_path / "daemon.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "pivox", "run", "--config", str(cfg)],
                            stdout=log_file, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 25
        while time.monotonic() < end and server.stats.replies < 1:
            time.sleep(0.2)
        time.sleep(4)  # through the dropped connection and the quiet reconnect
        outputs.append(str(request(str(sock), "status")))
        for args in (["status", "--json", "--socket", str(sock)],
                     ["diag", "--json", "--config", str(cfg), "--no-sound"]):
            done = subprocess.run([sys.executable, "-m", "pivox", *args], capture_output=True,
                                  text=True, timeout=60)
            outputs += [done.stdout, done.stderr]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log_file.close()
        log = (tmp_path / "daemon.log").read_text()
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
    outputs.append(log)
    assert server.stats.replies >= 1 and server.stats.connections >= 2, log[-2000:]
    assert "x-goog-api-key" in log.lower()  # headers were logged, masked
    for text in outputs:
        assert KEY not in text
