"""CPU budget: the smallest CPU quota at which whole conversations stay clean.

The real `pivox run` process on real libasound (the HIL tests' PulseAudio rig, through
ALSA's pulse plugin) holds two conversations per quota: the wake word and the demo
question with its reply heard whole, then the question again spoken over the second
reply (a barge-in; duplex "auto", echo canceller on). Once the daemon is ready it is moved
into a cgroup v1 cpu group with that quota per 100 ms period; its every thread follows.

Clean means: the first reply is heard at the speaker for at least HEARD_SHARE of its
recording's loud time (reply_loud_s) with no more underruns than the unconfined run in the
same run (the reference server's pacing may let the jitter buffer run dry once), the speaker
falls silent within BARGE_LIMIT_MS of the server's `interrupted`, and no microphone frame
was dropped or overrun. The smallest clean quota is searched on QUOTAS by bisection
(clean is taken to be monotonic in the quota).

The rig's own floor is measured beside it with the same method (bench.floor): a bare loop
that only reads the microphone PCM and writes the speaker PCM as the daemon's two audio
threads do. On a Pi's own `hw:` devices that floor is not paid.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bench import threads

ROOT = Path(__file__).resolve().parents[1]
HIL = ROOT / "tests" / "hil"
CGROUP = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
QUOTAS = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.5, 16.0, 25.0)  # % of one core
FLOOR_QUOTAS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0)  # the kernel takes no less than 1 ms
FLOOR_S = 8.0
HEARD_SHARE = 0.95
BARGE_LIMIT_MS = 60.0
LOUD = 400  # as the HIL tests: well above the null sink's silence, below speech
DATA = Path(str(resources.files("pivox") / "data"))


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return ""


def cpu_s(pid: int) -> float:
    """utime + stime of every thread of `pid`, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cgroup_missing() -> str:
    """Empty when a cpu quota can be set here, else why not."""
    if not (CGROUP / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu controller at {CGROUP}"
    if not os.access(CGROUP, os.W_OK):
        return f"{CGROUP} is not writable (run as root)"
    return ""


class Quota:
    """A cgroup v1 cpu group holding one process at `pct` % of one core."""

    def __init__(self, pct: float, pid: int) -> None:
        self.path = CGROUP / f"pivox-bench-{os.getpid()}-{time.monotonic_ns()}"
        self.path.mkdir()
        try:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * pct / 100)))
            (self.path / "cgroup.procs").write_text(str(pid))
        except OSError:
            self.path.rmdir()
            raise

    def throttled(self) -> int:
        for line in (self.path / "cpu.stat").read_text().splitlines():
            if line.startswith("nr_throttled"):
                return int(line.split()[1])
        return 0

    def remove(self) -> None:
        for _ in range(50):  # its tasks must have exited first
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def _hil() -> tuple[Any, Any, Any]:
    if str(HIL) not in sys.path:
        sys.path.insert(0, str(HIL))
    import processes
    import rig

    return rig, processes.DaemonProcess, processes.ServerThread


class StateLog:
    """The daemon's state changes, read from its own log ("state A -> B"): watching
    costs the confined daemon nothing, where each control-socket answer costs it CPU."""

    def __init__(self, d: Any) -> None:
        self._d = d
        self._pos = 0

    def wait(self, state: str, timeout: float) -> None:
        """Until the daemon enters `state` after what was read so far."""
        needle = f" -> {state} ".encode()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._d.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self._d.log.read_text()[-1500:]}")
            data = self._d.log.read_bytes()
            cut = data.rfind(b"\n") + 1  # whole lines only
            found = data.find(needle, self._pos, cut)
            self._pos = cut if found < 0 else data.index(b"\n", found) + 1
            if found >= 0:
                return
            time.sleep(0.02)
        raise TimeoutError(f"daemon: not {state} within {timeout:.0f} s")


def _loud_between(rec: Any, t0: float, t1: float) -> float:
    x, t = rec.samples()
    return float((np.abs(x[(t >= t0) & (t < t1)]) > LOUD).sum()) / rec.rate


def _sound_started(rec: Any, after: float, timeout: float) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        x, t = rec.samples()
        loud = np.nonzero((np.abs(x) > LOUD) & (t > after))[0]
        if len(loud):
            return float(t[loud[0]])
        time.sleep(0.05)
    raise TimeoutError("the reply never reached the speaker")


def _silence_after(rec: Any, t0: float, window_s: float = 0.4, timeout: float = 5.0
                   ) -> float:
    """When the speaker fell silent for `window_s`, from 0.1 s before t0 on."""
    end = time.monotonic() + timeout
    while True:
        x, t = rec.samples()
        if len(t) and t[-1] >= t0 + 0.6:
            break
        if time.monotonic() > end:
            raise TimeoutError("the speaker recording stalled")
        time.sleep(0.05)
    loud = np.abs(x) > LOUD
    win = int(window_s * rec.rate)
    start = int(np.searchsorted(t, t0 - 0.1))
    csum = np.concatenate([[0], np.cumsum(loud)])
    for i in range(start, len(x) - win):
        if csum[i + win] == csum[i]:
            return float(t[i])
    raise TimeoutError("the speaker never fell silent")


def conversation(rig_mod: Any, daemon_cls: Any, server_cls: Any, tmp: Path,
                 pct: float | None) -> dict[str, Any]:
    """One daemon, a fresh server (the same replies each run); `pct` None: unconfined."""
    from pivox.audio.wavfile import read_wav

    pcm = read_wav(DATA / "demo_mic.wav")
    manifest = json.loads((DATA / "demo_mic.json").read_text())
    # The user talks over the reply from nearer the microphone than the speaker is.
    q = np.frombuffer(pcm[int(manifest["speech_start_s"] * 16000) * 2 :], "<i2") * 2.0
    question = np.clip(q, -32768, 32767).astype("<i2").tobytes()
    (tmp / "pulse").mkdir()
    rig = rig_mod.PulseRig(tmp / "pulse")
    rig.start()
    server = server_cls()
    rec = rig.record()
    d = daemon_cls(tmp, rig, server.url, '[conversation]\nduplex = "auto"\n')
    quota: Quota | None = None
    out: dict[str, Any] = {"quota_pct": pct}
    states = StateLog(d)
    try:
        states.wait("idle", 30)
        if pct is not None:
            quota = Quota(pct, d.proc.pid)
            time.sleep(1.0)
        c0, w0 = cpu_s(d.proc.pid), time.monotonic()
        th0 = threads.sample(d.proc.pid)
        # 1: the wake word and the question; the reply heard whole.
        rig.feeder.say(pcm)
        states.wait("speaking", 20)
        t_reply = time.monotonic() - 0.3  # the wake chime ended a second before this
        th_reply, w_reply = threads.sample(d.proc.pid), time.monotonic()
        states.wait("idle", 30)
        out["reply_cpu_pct"] = threads.total(th_reply, threads.sample(d.proc.pid),
                                             time.monotonic() - w_reply)
        time.sleep(0.3)
        out["reply_heard_s"] = round(_loud_between(rec, t_reply, time.monotonic()), 3)
        st = d.status()
        out["reply_underruns"] = st["audio"]["underruns"]
        out["echo_converged"] = st["audio"]["echo_converged"]
        # 2: again, and the question spoken over the reply.
        rig.feeder.say(pcm)
        states.wait("speaking", 20)
        onset = _sound_started(rec, time.monotonic() - 0.4, 10)  # the reply, not the chime
        while time.monotonic() < onset + 0.5:
            time.sleep(0.02)
        rig.feeder.say(question)
        end = time.monotonic() + 15
        while server.interrupted_at() is None and time.monotonic() < end:
            time.sleep(0.05)
        t_int = server.interrupted_at()
        out["barge_in_ms"] = None if t_int is None else round(
            (_silence_after(rec, t_int) - t_int) * 1000, 1)
        out["playing_at_barge_in"] = t_int is not None and _loud_between(
            rec, t_int - 0.15, t_int) > 0  # else the figure says nothing
        time.sleep(1.0)
        st = d.status()
        out["talked_over"] = st["audio"]["talked_over"]
        out["cpu_pct"] = round(100 * (cpu_s(d.proc.pid) - c0) / (time.monotonic() - w0), 2)
        out["threads_cpu_pct"] = threads.share(th0, threads.sample(d.proc.pid),
                                               time.monotonic() - w0)
        out["dropped_frames"] = st["audio"]["dropped_frames"]
        out["overruns"] = st["audio"]["overruns"]
        out["underruns"] = st["audio"]["underruns"]
        out["throttled_periods"] = quota.throttled() if quota else 0
    finally:
        d.stop()
        rec.stop()
        server.stop()
        rig.stop()
        if quota is not None:
            quota.remove()
    return out


def reply_loud_s() -> float:
    """How long the first reply (a fresh reference server's) is above LOUD at the
    speaker: its recording, resampled to 48 kHz at the default volume."""
    import soxr

    from pivox.audio.wavfile import read_wav

    voices = Path(str(resources.files("pivox") / "reference" / "voices"))
    first = json.loads((voices / "replies.json").read_text())["replies"][0]["file"]
    x = np.frombuffer(read_wav(voices / first, 24000), dtype="<i2").astype(np.float32)
    return float((np.abs(soxr.resample(x, 24000, 48000) * 0.8) > LOUD).sum()) / 48000


def clean(r: dict[str, Any], heard_ref: float, underruns_ref: int = 0) -> bool:
    """`underruns_ref`: the unconfined run's count (see the module's docstring)."""
    return (r.get("reply_heard_s", 0) >= HEARD_SHARE * heard_ref
            and r.get("underruns", 1) <= underruns_ref
            and r.get("playing_at_barge_in") and r["barge_in_ms"] < BARGE_LIMIT_MS
            and r.get("dropped_frames") == 0 and r.get("overruns") == 0)


def _search(grid: tuple[float, ...], is_clean: Any) -> float | None:
    """Smallest clean value of a sorted grid, by bisection; None if even the top fails."""
    lo, hi, best = 0, len(grid) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if is_clean(grid[mid]):
            best, hi = grid[mid], mid - 1
        else:
            lo = mid + 1
    return best


def run(quotas: tuple[float, ...] | None = None) -> dict[str, Any]:
    grid = tuple(sorted(quotas)) if quotas else QUOTAS
    floor_grid = tuple(sorted(quotas)) if quotas else FLOOR_QUOTAS
    why = cgroup_missing()
    if not why:
        rig_mod, daemon_cls, server_cls = _hil()
        why = rig_mod.PulseRig.available()
    if why:
        return {"budget_skipped": why, "how": f"skipped: {why}"}
    load_before = load()
    tried: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pivox-budget-") as tmp:
        def fresh() -> Path:
            return Path(tempfile.mkdtemp(dir=tmp))

        ref = conversation(rig_mod, daemon_cls, server_cls, fresh(), None)
        heard_ref = reply_loud_s()
        ref["clean"] = clean(ref, heard_ref, ref["underruns"])
        under_ref = ref["underruns"]

        def daemon_clean(pct: float) -> bool:
            r = conversation(rig_mod, daemon_cls, server_cls, fresh(), pct)
            r["clean"] = clean(r, heard_ref, under_ref)
            tried.append(r)
            print(f"budget: {json.dumps(r)}", file=sys.stderr)
            return bool(r["clean"])

        from bench.floor import floor

        def floor_clean(pct: float) -> bool:
            r = floor(rig_mod, fresh(), pct)
            floors.append(r)
            print(f"budget floor: {json.dumps(r)}", file=sys.stderr)
            return bool(r["clean"])

        best = _search(grid, daemon_clean)
        floor_best = _search(floor_grid, floor_clean)
        floor_free = floor(rig_mod, fresh(), None)
    return {
        "min_clean_quota_pct": best,
        "rig_floor_pct": floor_best,
        "rig_floor_cpu_pct": floor_free["cpu_pct"],
        "budget_unconfined": ref,
        "budget_reply_loud_s": round(heard_ref, 3),
        "budget_tried": sorted(tried, key=lambda r: r["quota_pct"]),
        "budget_floor_tried": sorted(floors, key=lambda r: r["quota_pct"]),
        "budget_load": f"{load_before} -> {load()}",
        "how": "pivox run on the PulseAudio rig (pulse plugin, real libasound), echo "
               "canceller on, duplex auto; per quota: wake word + demo question (reply "
               f"heard >= {HEARD_SHARE:.0%} of its recording's loud time, no more underruns "
               "than unconfined), then "
               f"the question over the next reply (silent within {BARGE_LIMIT_MS:.0f} ms "
               "of `interrupted`), 0 dropped or overrun mic frames; quota = cgroup v1 "
               f"cpu.cfs_quota_us per {PERIOD_US} us period, set once the daemon is ready; "
               "bisection over " + "/".join(f"{q:g}" for q in grid) + " %. rig floor: "
               f"a bare loop reading the mic PCM and writing the speaker PCM for "
               f"{FLOOR_S:.0f} s, clean = no over/underrun; rig_floor_cpu_pct: what it "
               "uses unconfined; cpu_pct: the daemon's utime+stime over its conversations; "
               "reply_cpu_pct: the whole daemon from `speaking` until idle again (the "
               "first reply and its tail); threads_cpu_pct: each thread over the "
               "conversations, from /proc/PID/task/*/schedstat by thread name (loop: the "
               "main thread; threaded-ml: libpulse's); "
               "budget_load: /proc/loadavg before -> after",
    }


if __name__ == "__main__":
    print(json.dumps(run()))
