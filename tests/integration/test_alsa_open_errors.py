"""A microphone or speaker that will not open: libasound's own explanation is in the one
error line the daemon logs (and the error state shows), and nothing leaks onto stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
from pivox.audio.alsa import AlsaSink, AlsaSource
for make in (lambda: AlsaSource("default", 16000, 1, "S16_LE", -1, 20, 20),
             lambda: AlsaSink("default", 48000)):
    try:
        make()
    except OSError as exc:
        print(exc)
"""


@pytest.mark.parametrize("kind", ["microphone", "speaker"])
def test_open_error_carries_libasounds_reason_and_stderr_stays_clean(tmp_path: Path,
                                                                      kind: str) -> None:
    rc = tmp_path / "asoundrc"
    rc.write_text("defaults.pcm.card 31\n")  # a card that does not exist
    env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{rc}")
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                         text=True, timeout=30)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith(kind))
    assert "(libasound: parse_card: cannot find card" in line, out.stdout
    assert "ALSA lib" not in out.stderr, out.stderr
