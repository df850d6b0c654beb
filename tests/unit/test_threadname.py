"""The daemon's threads carry their names into the kernel, so `top -H`, `ps -L` and
/proc say which part of it spends the board's CPU."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from pivox.audio.ownvoice import OwnVoice
from pivox.audio.worker import DeviceThread
from pivox.hw.threadname import name_os_thread


def kernel_name() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


def test_a_thread_is_named_in_the_kernel_as_in_python() -> None:
    seen: list[str] = []

    def run() -> None:
        name_os_thread()
        seen.append(kernel_name())

    t = threading.Thread(target=run, name="pivox-a-long-thread-name")
    t.start()
    t.join()
    assert seen == ["pivox-a-long-th"]  # the kernel keeps 15 bytes


def test_the_audio_threads_and_the_twin_name_themselves() -> None:
    seen: list[str] = []

    class Worker(DeviceThread):
        def _run(self) -> None:
            seen.append(kernel_name())

    w = Worker("pivox-capture", 1.0, None, None)
    w._thread.start()
    w._thread.join()

    class Engine:
        stop_armed = False

        def process(self, pcm: bytes) -> str | None:
            seen.append(kernel_name())
            return None

    own = OwnVoice(Engine())  # type: ignore[arg-type]
    own.start()
    try:
        own.listen(np.ones(16000, dtype=np.int16), 0.0)  # a batch: the twin's thread hears
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        own.stop()
    assert seen[0] == "pivox-capture" and set(seen[1:]) == {"pivox-ownvoice"}, seen
