"""The benchmarks run and report every promised figure (their values are printed, not
asserted: speed targets live in the benchmark output, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*parts: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench", *parts, "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_part_reports_its_figures() -> None:
    figures = bench()  # all parts, as the README's table is made
    for key in ("idle_cpu_percent", "bare_engine_cpu_percent", "idle_cpu_ratio",
                "reconnect_p95_ms", "goaway_frames_lost", "erle_db", "double_talk_corr",
                "cpu_percent", "mic_to_wire_p50_ms", "mic_to_wire_p99_ms",
                "wire_to_speaker_ms", "rss_mb", "ready_s", "barge_in_ms",
                "quickstart_mic_to_wire_p99_ms", "rss_growth_mb_per_100_conversations",
                "rss_after_one_conversation_mb", "wake_micro_cpu_percent",
                "wake_micro_per_extra_keyword_cpu_percent", "wake_openwakeword_cpu_percent"):
        assert isinstance(figures[key], int | float), key
    print(json.dumps(figures, indent=1))


def test_unknown_part_is_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown part" in proc.stderr
