"""The README's performance table from one `scripts/bench --json` run:
`scripts/bench --json > run.json; python -m bench.table run.json`.

Each row says whether its value was measured or derived (computed from measured ones),
so the table never passes arithmetic off as a measurement.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

Row = tuple[str, str, Callable[[dict[str, Any]], str], str]


def _v(key: str, unit: str = "", nd: int | None = None) -> Callable[[dict[str, Any]], str]:
    def get(f: dict[str, Any]) -> str:
        x = f.get(key)
        if x is None:
            return "n/a"
        return f"{round(x, nd) if nd is not None else x}{unit}"
    return get


def _join(*parts: Callable[[dict[str, Any]], str], sep: str = " / "
          ) -> Callable[[dict[str, Any]], str]:
    return lambda f: sep.join(p(f) for p in parts)


def _u(key: str, unit: str) -> Callable[[dict[str, Any]], str]:
    """A figure of the budget's unconfined conversation."""
    return lambda f: _v(key, unit)(f.get("budget_unconfined") or {})


def _threads(f: dict[str, Any]) -> str:
    used = (f.get("budget_unconfined") or {}).get("threads_cpu_pct")
    if not used:
        return "n/a"
    return ", ".join(f"{name} {pct} %" for name, pct in used.items() if pct >= 0.05)


ROWS: list[Row] = [
    ("CPU budget: smallest clean quota", "measured", _v("min_clean_quota_pct", " % of one core"),
     "whole conversations with a barge-in through `pivox run` on the PulseAudio rig under "
     "a cgroup cpu quota; target 5 %"),
    ("rig floor at that method", "measured", _join(_v("rig_floor_pct", " % clean"),
                                                    _v("rig_floor_cpu_pct", " % used")),
     "a bare loop reading the mic PCM and writing the speaker PCM through the pulse plugin "
     "(not paid on a Pi's own `hw:` devices)"),
    ("CPU in a conversation / in a reply", "measured",
     _join(_u("cpu_pct", " %"), _u("reply_cpu_pct", " % of one core")),
     "the budget's unconfined run: its two conversations; the first reply from `speaking` "
     "until idle again"),
    ("... by thread", "measured", _threads,
     "the same conversations, each thread's time on a CPU (schedstat) by its name"),
    ("idle CPU, whole daemon", "measured", _v("idle_cpu_percent", " % of one core"),
     "`pivox run`, every thread, 2 min idle on the PulseAudio rig"),
    ("bare wake engine, same PCM", "measured", _v("bare_engine_cpu_percent", " %"),
     "a process reading the same mic PCM into pymicro-wakeword, same 2 min"),
    ("idle / bare ratio", "derived", _v("idle_cpu_ratio", "x"), "the two above; target 1.5x"),
    ("mic-to-wire p50 / p99 / live p99", "measured",
     _join(_v("mic_to_wire_p50_ms"), _v("mic_to_wire_p99_ms"),
           _v("mic_to_wire_live_p99_ms", " ms")),
     "capture of a frame's last sample to its socket write (20 ms frames, up to three a "
     "message: the wait for the message counts); live: after the lead-in from before the "
     "wake word, which leaves in one burst"),
    ("mic-to-wire, first sample, p99", "derived",
     _join(_v("mic_to_wire_first_sample_p99_ms", " ms"),
           _v("quickstart_first_sample_p99_ms", " ms"), sep=" vs "),
     "the live last-sample p99 plus one frame (20 ms), against a client built like Google's "
     "quickstart (its measured p99 plus its 64 ms chunk)"),
    ("wire-to-speaker", "measured", _v("wire_to_speaker_ms", " ms"),
     "first reply frame received to first sample written (60 ms jitter buffer)"),
    ("barge-in", "measured", _v("barge_in_ms", " ms"),
     "server's `interrupted` to the speaker's buffer dropped (in process)"),
    ("reconnect p50 / p95", "measured", _join(_v("reconnect_p50_ms"),
                                               _v("reconnect_p95_ms", " ms")),
     "server back to first audio frame accepted"),
    ("goAway handover", "measured", _v("goaway_frames_lost", " frames lost"),
     "numbered microphone frames across the connection switch"),
    ("echo return loss enhancement", "measured",
     _join(_v("erle_db", " dB median"), _v("erle_db_worst", " dB worst"), sep=", "),
     "speex canceller on nine synthetic rooms, after the first 2 s"),
    ("double talk", "measured", _v("double_talk_corr"),
     "correlation of the output with the user's clean speech while the speaker talks"),
    ("echo + capture path CPU", "measured", _v("cpu_percent", " %"),
     "the capture thread's echo step, wake engine and speech detector, in process"),
    ("resident memory, max", "measured", _v("rss_max_mb", " MB"),
     "one fresh `pivox run` alone: the conversations and idle minutes below; target 60 MB"),
    ("memory growth", "measured",
     _join(_v("rss_growth_mb_per_100_conversations", " MB per 100 conversations"),
           _v("rss_idle_growth_mb_per_hour", " MB per idle hour"), sep=", "),
     "after the first 5 conversations; idle: least-squares slope"),
    ("start to READY", "measured", _v("ready_s", " s"), "spawning `pivox run` to `READY=1`"),
    ("wake engine per keyword", "measured",
     lambda f: (f"micro {f.get('wake_micro_cpu_percent')} % (+"
                f"{f.get('wake_micro_per_extra_keyword_cpu_percent')} % a keyword), "
                f"openWakeWord {f.get('wake_openwakeword_cpu_percent')} % (+"
                f"{f.get('wake_openwakeword_per_extra_keyword_cpu_percent')} %)"),
     "bare engines on 30 s of noise; Porcupine needs an AccessKey"),
]


def render(f: dict[str, Any]) -> str:
    lines = ["| figure | value | measured or derived | how |", "|---|---|---|---|"]
    lines += [f"| {name} | {get(f)} | {kind} | {how} |" for name, kind, get, how in ROWS]
    loads = "; ".join(f"{k.removesuffix('_loadavg')} {v}" for k, v in f.items()
                      if k.endswith("_loadavg"))
    lines += ["", f"Run {f.get('bench_date', '?')} on {f.get('bench_machine', '?')}; "
              f"memory over {f.get('memory_conversations')} conversations and "
              f"{f.get('memory_idle_minutes')} idle minutes. Load averages (1, 5, 15 min) "
              f"before -> after each part: {loads}."]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        text = fh.read().strip().splitlines()[-1]
    print(render(json.loads(text)))
