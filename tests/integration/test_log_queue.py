"""Logging never blocks audio: with stderr a pipe nobody reads, a thread that logs on
every frame keeps its pace (the records wait in the journal module's queue, and past its
bound are dropped and counted), where a handler writing from the thread itself stalls
as soon as the pipe is full."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, logging, os, sys, threading, time
from pivox.hw import journal
if sys.argv[1] == "queued":
    journal.setup("info", env={"PIVOX_LOG": "stderr"})
else:  # what logging.basicConfig gives: the calling thread writes
    logging.basicConfig(level=logging.INFO)
log = logging.getLogger("pivox.capture")
frames = 0
def audio() -> None:  # 20 ms frames, 20 long warnings each
    global frames
    for _ in range(150):
        for _ in range(20):
            log.warning("capture stalled %s", "x" * 2000)
        frames += 1
        time.sleep(0.02)
t = threading.Thread(target=audio, daemon=True)
t.start()
t.join(6.0)
print(json.dumps({"frames": frames, "dropped": journal.dropped()}), flush=True)
os._exit(0)  # stderr is still full: exit without flushing it
"""


def run_child(mode: str) -> dict[str, int]:
    r, w = os.pipe()  # stderr: nobody ever reads it (64 KiB fill it)
    try:
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", CHILD, mode], stderr=w,
                             stdout=subprocess.PIPE, text=True, timeout=30, check=True)
        took = time.monotonic() - started
    finally:
        os.close(w)
        os.close(r)
    return {**json.loads(out.stdout), "took_s": round(took, 1)}


def test_a_full_stderr_pipe_does_not_stop_an_audio_thread() -> None:
    got = run_child("queued")
    assert got["frames"] == 150, got  # every frame, at its pace
    assert got["dropped"] > 0, got  # the queue's bound was reached, and counted


def test_without_the_queue_the_same_pipe_stalls_it() -> None:
    got = run_child("direct")
    assert got["frames"] < 60, got  # the rig can tell: the writing thread blocks
