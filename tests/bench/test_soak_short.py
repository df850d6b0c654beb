"""A one-minute soak: conversations under injected faults, with no crash and no hang.

What is asserted is behaviour (nothing died, nothing got stuck, a conversation completed
and the faults were really injected), never a timing or a memory figure; those are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_one_minute_soak_has_no_crash_or_hang() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "1", "--seed", "7",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=150)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no figures (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    figures = json.loads(lines[-1])
    print(json.dumps(figures, indent=1))
    assert figures["crashes"] == 0, figures["crash_details"]
    assert figures["hangs"] == 0, figures["hang_details"]
    assert figures["conversations_completed"] >= 1, figures
    assert sum(figures["faults"].values()) >= 1, figures
    assert proc.returncode == 0, proc.stderr[-3000:]
