"""The reference server on its own loop, and `pivox run` as a process, for HIL tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rig import PulseRig

from pivox.control import request
from pivox.reference.server import ReferenceServer


class ServerThread:
    """The reference server on a loop of its own, as a separate machine would be."""

    def __init__(self, **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = ReferenceServer(**kw)
        self.call(self.server.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def interrupted_at(self) -> float | None:
        return self.server.stats.last_interrupted_at

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class DaemonProcess:
    """`pivox run` as the service would run it, observed through its control socket."""

    def __init__(self, tmp: Path, rig: PulseRig, url: str, extra: str = "") -> None:
        self.socket = str(tmp / "control.sock")
        self.config = tmp / "pivox.toml"
        self.config.write_text(f"""
[audio.capture]
device = "{rig.mic_device}"
[audio.playback]
device = "{rig.spk_device}"
rate = 48000
[link]
url = "{url}"
[control]
socket = "{self.socket}"
{extra}
""")
        self.log = tmp / "daemon.log"
        self._log = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "pivox", "run", "--config",
                                      str(self.config)], env=rig.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def status(self) -> dict[str, Any]:
        try:
            return request(self.socket, "status", timeout=2)
        except (OSError, ValueError):
            return {}

    def wait_state(self, want: str | Callable[[dict], bool], timeout: float) -> dict[str, Any]:
        pred = want if callable(want) else (lambda s: s.get("state") == want)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"daemon exited: {self.log.read_text()[-2000:]}"
            st = self.status()
            if st and pred(st):
                return st
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {want}; last status {self.status()}; "
                             f"log: {self.log.read_text()[-3000:]}")

    def pause(self, seconds: float) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = -9
        self._log.close()
        return code


