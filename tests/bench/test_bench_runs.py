"""The benchmarks run and report every promised figure (their values are printed, not
asserted: speed targets live in the benchmark output, not in tests). The long parts run
short here (--idle-seconds, --conversations, --idle-minutes, --quotas)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: float = 400) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench", *args, "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_part_reports_its_figures() -> None:
    figures = bench("idle", "link", "echo", "latency", "memory", "--idle-seconds", "10",
                    "--conversations", "2", "--idle-minutes", "0.2")
    for key in ("idle_cpu_percent", "bare_engine_cpu_percent", "idle_cpu_ratio",
                "reconnect_p95_ms", "goaway_frames_lost", "erle_db", "double_talk_corr",
                "cpu_percent", "mic_to_wire_p50_ms", "mic_to_wire_p99_ms",
                "wire_to_speaker_ms", "rss_max_mb", "rss_warm_mb", "ready_s", "barge_in_ms",
                "quickstart_mic_to_wire_p99_ms", "rss_after_one_conversation_mb",
                "wake_micro_cpu_percent", "wake_micro_per_extra_keyword_cpu_percent",
                "wake_openwakeword_cpu_percent"):
        assert isinstance(figures[key], int | float), key
    assert figures["memory_conversations"] == 2
    assert set(figures["latency_derived"]) == {"mic_to_wire_first_sample_p99_ms",
                                                "quickstart_first_sample_p99_ms"}
    for part in ("idle", "link", "echo", "latency", "memory"):
        assert figures[f"{part}_loadavg"].count(" ") == 6, part  # three, "->", three
    assert figures["bench_date"] and figures["bench_machine"]
    print(json.dumps(figures, indent=1))


def test_budget_reports_its_search_or_why_it_cannot() -> None:
    figures = bench("budget", "--quotas", "25")
    if "budget_skipped" in figures:
        print(figures["budget_skipped"])
        return
    assert figures["min_clean_quota_pct"] in (25.0, None)
    assert [r["quota_pct"] for r in figures["budget_tried"]] == [25.0]
    assert isinstance(figures["rig_floor_cpu_pct"], float)
    for r in figures["budget_tried"]:
        assert {"reply_heard_s", "barge_in_ms", "underruns", "dropped_frames",
                "overruns", "cpu_pct", "reply_cpu_pct", "clean"} <= r.keys()
    # Where the CPU went, by the daemon's own thread names: the audio threads and the
    # loop each did work, and together they are the process's time.
    ref = figures["budget_unconfined"]
    used = ref["threads_cpu_pct"]
    assert {"pivox-capture", "pivox-playback", "loop"} <= used.keys(), used
    assert all(used[n] > 0 for n in ("pivox-capture", "pivox-playback", "loop"))
    assert abs(sum(used.values()) - ref["cpu_pct"]) < 0.5 * ref["cpu_pct"], ref
    assert ref["reply_cpu_pct"] > 0
    print(json.dumps(figures, indent=1))


def test_unknown_part_is_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown part" in proc.stderr
