"""Where a process's CPU goes, thread by thread: each thread's time on a CPU from
/proc/PID/task/TID/schedstat (nanoseconds, where /proc's stat counts 10 ms ticks), summed
by the thread's OS name. The daemon names its own threads (pivox-capture,
pivox-playback, ...); the main thread, which runs the event loop, is reported as "loop",
and libpulse's own threads under their name ("threaded-ml")."""

from __future__ import annotations

from pathlib import Path


def sample(pid: int) -> dict[str, float]:
    """CPU seconds so far per thread name."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "loop" if task.name == str(pid) else (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended as it was read
            continue
        out[name] = out.get(name, 0.0) + ns / 1e9
    return out


def share(before: dict[str, float], after: dict[str, float], seconds: float
          ) -> dict[str, float]:
    """% of one core each thread name used between two samples, busiest first."""
    used = {n: after[n] - before.get(n, 0.0) for n in after}
    return {n: round(100 * s / seconds, 2)
            for n, s in sorted(used.items(), key=lambda kv: -kv[1]) if s > 0}


def total(before: dict[str, float], after: dict[str, float], seconds: float) -> float:
    return round(100 * (sum(after.values()) - sum(before.values())) / seconds, 2)
