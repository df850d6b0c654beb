"""`pivox wake eval`: how well an engine hears a keyword, on a folder of recordings.

A folder with `positives/` and `negatives/` gives the numbers that matter: the share of
positive recordings woken on (`positives/<keyword>/` when there is one per keyword), and
false accepts per hour of negative audio. Any other folder just lists what was heard in
each file, with times. Files are fed in 20 ms frames, as the capture thread does, through
the same Spotter as the daemon (cutoff, refractory period), so the numbers are the
speaker's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivox.audio.base import DeviceError
from pivox.audio.wavfile import read_wav
from pivox.core.formats import FRAME_BYTES, MIC_RATE, SAMPLE_BYTES
from pivox.core.wakeword import keyword_id
from pivox.wake import make_scorer
from pivox.wake.spotter import Spotter

FRAME = FRAME_BYTES  # the capture thread's frame


@dataclass
class FileResult:
    path: str
    kind: str  # "positive", "negative" or "file"
    seconds: float
    detections: list[tuple[str, float]]  # (keyword, seconds into the file)
    error: str = ""  # why the file could not be read (it then counts nowhere)


@dataclass
class Report:
    engine: str
    keyword: str
    cutoff: float
    refractory_s: float
    files: list[FileResult] = field(default_factory=list)
    cpu_s: float = 0.0
    audio_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        pos = [f for f in self.files if f.kind == "positive"]
        neg = [f for f in self.files if f.kind == "negative"]
        detected = sum(1 for f in pos if f.detections)
        false_accepts = sum(len(f.detections) for f in neg)
        hours = sum(f.seconds for f in neg) / 3600
        return {
            "engine": self.engine, "keyword": self.keyword, "cutoff": round(self.cutoff, 3),
            "refractory_s": self.refractory_s,
            "positives": len(pos), "detected": detected,
            "detection_rate": round(detected / len(pos), 4) if pos else None,
            "negatives": len(neg), "negative_hours": round(hours, 4),
            "false_accepts": false_accepts,
            "false_accepts_per_hour": round(false_accepts / hours, 2) if hours else None,
            "unreadable": [f.path for f in self.files if f.error],
            "audio_s": round(self.audio_s, 1),
            "cpu_percent": round(100 * self.cpu_s / self.audio_s, 2) if self.audio_s else 0.0,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "files": [
            {"path": f.path, "kind": f.kind, "seconds": round(f.seconds, 2),
             "detections": [{"keyword": k, "t": round(t, 2)} for k, t in f.detections],
             **({"error": f.error} if f.error else {})}
            for f in self.files]}


def _wavs(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())


def plan(root: Path, keyword: str) -> list[tuple[Path, str]]:
    """Which files to run and what each is, by the folder convention."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder of WAV files")
    pos_dir, neg_dir = root / "positives", root / "negatives"
    if not (pos_dir.is_dir() or neg_dir.is_dir()):
        files = [(p, "file") for p in _wavs(root)]
    else:
        # positives/<keyword>/ when the folder is split by keyword; otherwise all of it
        # is taken to be recordings of this keyword.
        own = pos_dir / keyword
        split = pos_dir.is_dir() and any(p.is_dir() for p in pos_dir.iterdir())
        positives = _wavs(own) if own.is_dir() else [] if split else _wavs(pos_dir) \
            if pos_dir.is_dir() else []
        negatives = _wavs(neg_dir) if neg_dir.is_dir() else []
        files = [(p, "positive") for p in positives] + [(p, "negative") for p in negatives]
    if not files:
        raise ValueError(f"{root}: no .wav files found")
    return files


def evaluate(root: Path, engine: str, keywords: Sequence[str], cutoff: float = 0.0,
             refractory_s: float = 2.0, access_key: str = "") -> list[Report]:
    """One pass over the audio for all `keywords` (they share the engine's front end);
    each keyword has its own Spotter, so one keyword's detection never hides another's."""
    ids = [keyword_id(k) for k in keywords]
    scorer = make_scorer(engine, list(keywords), dict.fromkeys(ids, cutoff), access_key)
    plans = {kw: plan(root, kw) for kw in ids}
    paths = sorted({p for files in plans.values() for p, _ in files})
    reports = {kw: Report(engine, kw, Spotter(scorer, [kw], cutoff=cutoff).cutoff,
                          refractory_s) for kw in ids}
    kinds = {kw: dict(files) for kw, files in plans.items()}
    cpu = 0.0
    audio = 0.0
    for path in paths:
        name = str(path.relative_to(root))
        mine = [kw for kw in ids if path in kinds[kw]]
        try:
            pcm = read_wav(path)
        except DeviceError as exc:  # one bad file must not lose the whole run
            for kw in mine:
                reports[kw].files.append(FileResult(name, "unreadable", 0.0, [], str(exc)))
            continue
        scorer.reset()
        spotters = {kw: Spotter(scorer, [kw], cutoff=cutoff, refractory_s=refractory_s)
                    for kw in mine}
        heard: dict[str, list[tuple[str, float]]] = {kw: [] for kw in mine}
        t0 = time.process_time()
        for i in range(0, len(pcm), FRAME):
            chunk = pcm[i:i + FRAME]
            scores = list(scorer.scores(chunk))
            for kw, spotter in spotters.items():
                if spotter.observe(len(chunk) // 2, scores):
                    heard[kw].append((kw, round((i + len(chunk)) / SAMPLE_BYTES / MIC_RATE, 2)))
        cpu += time.process_time() - t0
        seconds = len(pcm) / SAMPLE_BYTES / MIC_RATE
        audio += seconds
        for kw in mine:
            reports[kw].files.append(FileResult(name, kinds[kw][path], seconds, heard[kw]))
    for r in reports.values():
        r.cpu_s, r.audio_s = cpu, audio
    return list(reports.values())


def render(report: Report, verbose: bool = True) -> str:
    s = report.summary()
    lines = [f"{s['engine']} / {s['keyword']} (cutoff {s['cutoff']}, "
             f"refractory {s['refractory_s']} s)"]
    if verbose:
        for f in report.files:
            heard = f.error or ", ".join(f"{k} at {t:.2f} s" for k, t in f.detections) or "-"
            miss = "  MISSED" if f.kind == "positive" and not f.detections else ""
            lines.append(f"  {f.path:<56} {f.seconds:7.1f} s  {heard}{miss}")
    if s["positives"]:
        lines.append(f"  detected {s['detected']}/{s['positives']} positives "
                     f"({100 * s['detection_rate']:.1f} %)")
    if s["negatives"]:
        lines.append(f"  {s['false_accepts']} false accepts in {s['negative_hours'] * 60:.1f} "
                     f"min of negatives ({s['false_accepts_per_hour']} per hour)")
    if not (s["positives"] or s["negatives"]):
        total = sum(len(f.detections) for f in report.files)
        lines.append(f"  {total} detections in {len(report.files)} files")
    lines.append(f"  CPU {s['cpu_percent']} % of one core over {s['audio_s']} s of audio")
    return "\n".join(lines)
