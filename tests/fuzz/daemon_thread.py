"""A real daemon on its own loop thread, for fuzzing what runs on that loop.

Recorded microphone, no server (it goes offline and keeps retrying), so fuzzed commands
drive the real state machine. `on_loop(fn)` runs `fn` on the daemon's loop, as the control
socket and the MQTT adapter do, and returns its result to the test thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pivox import config
from pivox.daemon import Daemon

DEMO_MIC = Path(str(resources.files("pivox") / "data" / "demo_mic.wav"))
T = TypeVar("T")


class DaemonThread:
    def __init__(self, tmp: Path, extra: str = "") -> None:
        cfg = config.parse(f"""
[audio.capture]
device = "wav:{DEMO_MIC}"
[audio.playback]
device = "wav:{tmp / 'speaker.wav'}"
{extra}
[link]
url = "ws://127.0.0.1:9/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
[control]
socket = "{tmp / 'control.sock'}"
""", str(tmp / "pivox.toml"))
        self.daemon = Daemon(cfg)
        self.loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuzz-daemon", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            task = asyncio.create_task(self.daemon.run(self._stop))
            while self.daemon.commands is None or self.daemon.session is None:
                await asyncio.sleep(0.01)
            # (The link policy's reconnect jitter draws from its own random.Random, never
            # the global generator hypothesis watches on the test thread.)
            self._ready.set()
            await task

        self.loop.run_until_complete(main())

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(20), "the daemon did not start"

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def stop(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
