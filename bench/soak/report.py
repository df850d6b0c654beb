"""The soak's report: conversations followed from the daemon's states, and the figures.

A conversation is attempted when the daemon starts listening, completed when it is back
to idle having spoken, "no reply" when it returns to idle without speaking (an apology,
no speech found), and broken when it goes offline, to error or muted on the way.
Memory is this whole process's VmRSS (daemon and server): boot is the first idle, start
the first completed conversation (warm), the slope fitted after the first third.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.soak.faults import FAULT_EVERY_S, FIRST_FAULT_S

if TYPE_CHECKING:
    from bench.soak.rig import Soak

CONVERSATION = ("listening", "thinking", "speaking")


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Conversations:
    attempted: int = 0
    completed: int = 0
    no_reply: int = 0  # back to idle without the speaker talking (apology, no speech)
    broken: int = 0  # went offline or to error on the way (a fault hit it)
    wakes: int = 0
    durations: list[float] = field(default_factory=list)
    _open: dict[str, Any] | None = None
    _prev: str = "booting"

    def on_state(self, state: str, t: float) -> None:
        if state == "listening" and self._prev not in CONVERSATION:
            self.attempted += 1
            self._open = {"t": t, "spoke": False}
        elif state == "speaking" and self._open is not None:
            self._open["spoke"] = True
        elif state == "idle" and self._open is not None:
            if self._open["spoke"]:
                self.completed += 1
                self.durations.append(t - self._open["t"])
            else:
                self.no_reply += 1
            self._open = None
        elif state in ("offline", "error", "muted") and self._open is not None:
            self.broken += 1
            self._open = None
        self._prev = state


def figures(soak: Soak, daemon: dict[str, Any], rss_end: float | None = None) -> dict[str, Any]:
    """Every figure of the run. `daemon` holds the daemon's counters (`rig.daemon_counters`)."""
    rss_end = rss_mb() if rss_end is None else rss_end
    boot = soak.rss_boot if soak.rss_boot is not None else soak.rss_before
    start = soak.rss_start if soak.rss_start is not None else boot
    c = soak.conversations
    slope = _slope(soak.rss[len(soak.rss) // 3:])  # after warm-up
    return {
        "minutes": soak.minutes,
        "seed": soak.seed,
        "crashes": soak.crashes,
        "hangs": soak.hangs,
        "rss_boot_mb": round(boot, 1),
        "rss_start_mb": round(start, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_mb": round(rss_end - start, 1),
        "rss_peak_mb": round(max([rss_end, start, soak.peak[1]]), 1),
        "rss_peak_at_s": round(soak.peak[0]),
        "rss_peak_after": soak.peak[2],
        "rss_slope_mb_per_hour": None if slope is None else round(slope * 3600, 1),
        "conversations": c.attempted,
        "conversations_completed": c.completed,
        "conversations_no_reply": c.no_reply,
        "conversations_broken_by_faults": c.broken,
        "conversation_p50_s": _pct(c.durations, 0.5),
        "wake_detections": c.wakes,
        "faults": dict(sorted(soak.schedule.injected.items())),
        "faults_applied": dict(sorted(soak.schedule.applied.items())),
        "dropped_frames": daemon.get("dropped_frames", 0),
        "overruns": daemon.get("overruns", 0),
        "underruns": daemon.get("underruns", 0),
        "link_audio_dropped_ms": daemon.get("link_audio_dropped_ms", 0),
        "mic_frames": daemon.get("mic_frames", 0),
        "loop_lag_p99_ms": _hist_pct(soak.lag_ms, 0.99),
        "loop_lag_max_ms": max(soak.lag_ms, default=0),
        "states_entered": dict(sorted(soak.states.items())),
        "server": dict(sorted(soak.server_totals.items())),
        "server_stop_timeouts": soak.server_stop_timeouts,
        "logged": dict(sorted(soak.logged.items())),
        "fault_log": soak.schedule.log[-40:],
        "crash_details": soak.crash_details,
        "hang_details": soak.hang_details,
        "final_state": daemon.get("state", ""),
        "how": (f"real daemon on a looping recording ({soak.cycle_s:.1f} s: the demo "
                f"question, then {soak.gap_s:g} s of quiet, looped at real time), "
                f"bundled reference server on 127.0.0.1:{soak.port}; a random fault every "
                f"{FAULT_EVERY_S[0]:g}-{FAULT_EVERY_S[1]:g} s after the first "
                f"{FIRST_FAULT_S[0]:g} s; keep_warm_s {soak.keep_warm_s:g}; RSS is this "
                "whole process (daemon and server, whose record of received messages is "
                "cleared every second); boot = first idle, start = after the first "
                "completed conversation (warm)"),
    }


def render(figures: dict[str, Any]) -> str:
    """The figures as aligned `key  value` lines, then how they were measured."""
    rest = {k: v for k, v in figures.items() if k != "how"}
    width = max(len(k) for k in rest)
    lines = [f"{key:<{width}}  {value}" for key, value in rest.items()]
    return "\n".join(lines) + f"\n\n{figures.get('how', '')}"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def _hist_pct(hist: Counter[int], q: float) -> int:
    total = sum(hist.values())
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= q * total:
            return value
    return 0


def _slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares MB per second through (t, rss) samples spanning at least 5 minutes."""
    if len(points) < 3 or points[-1][0] - points[0][0] < 300:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mm = sum(m for _, m in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (m - mm) for t, m in points) / var if var else None
