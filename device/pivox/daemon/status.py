"""`pivox status`: a pure function of the parts' frozen snapshots.

Nothing here reaches into a component: each one hands over a snapshot, and status, the
diagnostics and the watchdog read those. So status is cheap to test and safe to publish
(it holds counters and names only, never a secret: URLs are scrubbed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pivox.audio.capture import CaptureSnapshot
from pivox.audio.playback import PlaybackSnapshot
from pivox.config import Config
from pivox.core.machine import Machine
from pivox.daemon.alerts import AlertsSnapshot
from pivox.daemon.supervisor import HealthSnapshot
from pivox.home.outbox import MqttSnapshot
from pivox.hw.gpio import LedSnapshot
from pivox.link.base import LinkSnapshot
from pivox.secrets import scrub


@dataclass(frozen=True)
class WakeSnapshot:
    engine: str
    keywords: tuple[str, ...]
    stop_keywords: tuple[str, ...]
    fallback: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Snapshots:
    machine: Machine
    uptime_s: float
    capture: CaptureSnapshot
    playback: PlaybackSnapshot
    link: LinkSnapshot
    leds: LedSnapshot
    wake: WakeSnapshot
    health: HealthSnapshot
    audio_dropped_frames: int
    full_duplex: bool
    mqtt: MqttSnapshot | None = None  # None: [mqtt] not configured
    alerts: AlertsSnapshot | None = None  # timers and alarms (daemon/alerts.py)


def status_line(m: Machine) -> str:
    """The one line systemd shows (STATUS=) and the journal repeats."""
    return f"{m.state.value}: {m.reason}" if m.reason else m.state.value


def build(cfg: Config, s: Snapshots) -> dict[str, Any]:
    cap, pb, link = s.capture, s.playback, s.link
    return {
        "state": s.machine.state.value,
        "muted": cap.muted,
        "reason": s.machine.reason,
        "uptime_s": round(s.uptime_s, 1),
        "health": {"healthy": s.health.healthy, "problems": list(s.health.problems),
                   "loop_lag_ms": s.health.loop_lag_ms, "watchdog_pings": s.health.pings,
                   "restarts": {k: v for k, v in s.health.restarts.items() if v}},
        "link": {
            "backend": link.backend, "url": scrub(cfg.link.url), "model": cfg.link.model,
            "connected": link.connected, "resumable": link.resumable,
            "last_error": link.last_error, "audio_dropped_ms": link.audio_dropped_ms,
            "connects": link.connects, "server_errors": link.server_errors,
            "retry_in_s": round(link.retry_in_s, 1),
        },
        "audio": {
            "capture_device": cap.device,
            "playback_device": cfg.audio.playback.device,
            "frames": cap.frames,
            "overruns": cap.overruns,
            "dropped_frames": s.audio_dropped_frames,
            "playback_level": round(pb.level, 3),
            "volume": pb.volume,
            "underruns": pb.underruns,
            "echo_cancelling": bool(cfg.audio.echo.enabled and cap.echo_cancelling),
            "echo_converged": cap.echo_converged,
            "erle_db": round(cap.erle_db, 1),
            "own_voice_ignored": cap.own_voice_ignored,
            "echo_held_frames": cap.echo_held_frames,
            "talked_over": cap.talked_over,
            "room": dict(cap.room),
            "duplex": "full" if s.full_duplex else "half",
        },
        "leds": {
            "kind": cfg.leds.kind,
            "colours": [list(c) for c in s.leds.colours[:12]],
            "errors": s.leds.errors,
        },
        "wake": {
            "engine": s.wake.engine, "keyword": s.wake.keywords[0],
            "keywords": list(s.wake.keywords),
            "stop_keywords": list(s.wake.stop_keywords),
            "fallback": s.wake.fallback or None,
            "probabilities": {k: round(v, 3) for k, v in s.wake.probabilities.items()},
            "last_detection": cap.last_wake[0] if cap.last_wake else None,
            "detections": cap.wake_count,
        },
        "mqtt": asdict(s.mqtt) if s.mqtt is not None else None,
        "timers": list(s.alerts.timers) if s.alerts else [],
        "alarms": list(s.alerts.alarms) if s.alerts else [],
        "ringing": list(s.alerts.ringing) if s.alerts else [],
    }
