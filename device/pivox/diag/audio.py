"""The sound checks: capture (a second of audio, metered per channel), playback (a short
tone) and wake (the bundled recording through the configured engine).

libasound's own error messages are collected during each ALSA call and reported with the
check that caused them, never printed over the report.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pivox import config as config_mod
from pivox.diag.check import FAIL, PASS, WARN, Check, Context, in_thread

CLIP = 32767 / 32768  # a sample this close to full scale counts as clipped
FLOOR_DB = -120.0
NO_CARDS_HINT = ("enable the card's overlay (dtoverlay=... in /boot/firmware/config.txt) and "
                 "reboot; aplay -l lists the cards the kernel found")


def dbfs(value: float) -> float:
    if value <= 0:
        return FLOOR_DB
    return round(max(FLOOR_DB, 20 * math.log10(value)), 1) + 0.0  # never "-0.0"


def meter(x: np.ndarray) -> list[dict[str, float]]:
    """Per channel of `x` (frames, channels; floats in [-1, 1)): rms and peak in dBFS, and
    how many samples were at full scale."""
    out = []
    for c in range(x.shape[1]):
        col = x[:, c].astype(np.float64)
        rms = float(np.sqrt(np.mean(col * col))) if len(col) else 0.0
        peak = float(np.max(np.abs(col))) if len(col) else 0.0
        out.append({"rms_dbfs": dbfs(rms), "peak_dbfs": dbfs(peak),
                    "clipped": int(np.count_nonzero(np.abs(col) >= CLIP))})
    return out


def describe_levels(levels: list[dict[str, float]]) -> str:
    parts = []
    for i, lv in enumerate(levels):
        if lv["peak_dbfs"] <= FLOOR_DB:
            parts.append(f"ch{i} silent (all zero)")
        else:
            parts.append(f"ch{i} {lv['rms_dbfs']:.1f} dBFS (peak {lv['peak_dbfs']:.1f})")
    clipped = sum(int(lv["clipped"]) for lv in levels)
    return f"{', '.join(parts)}; {clipped} clipped"


def alsa_call(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any, list[str]]:
    """`in_thread`, plus what libasound said during the call (on that thread)."""
    from pivox.audio.alsa import alsa_errors

    said: list[str] = []

    def body() -> Any:
        with alsa_errors() as seen:
            try:
                return fn()
            finally:
                said.extend(seen)

    done, result = in_thread(body, timeout)
    return done, result, said


def libasound_said(said: list[str], most: int = 3) -> str:
    """libasound's messages for a detail line, each once: the first (the cause) and the
    last (what finally failed) always among them."""
    unique = list(dict.fromkeys(said))
    if not unique:
        return ""
    if len(unique) > most:
        unique = [*unique[: most - 1], f"(+{len(unique) - most} more)", unique[-1]]
    return f"; libasound: {' | '.join(unique)}"


def sound_cards() -> list[str]:
    try:
        import alsaaudio

        return list(alsaaudio.cards())
    except Exception:
        return []


def busy(text: str) -> bool:
    return "busy" in text.lower()


def _would_not_open(name: str, detail: str, alsa: str, hint: str) -> Check:
    """A device that would not open: on a machine with no cards at all, that is the news."""
    if not sound_cards():
        return Check(name, FAIL, f"{detail}; no sound cards on this machine{alsa}",
                     NO_CARDS_HINT)
    return Check(name, FAIL, detail + alsa, hint)


def _read_alsa(cap: config_mod.CaptureConfig, seconds: float) -> tuple[np.ndarray, int]:
    import alsaaudio

    from pivox.audio.alsa import FORMATS, to_float

    fmt, _ = FORMATS[cap.format]
    period = cap.rate * cap.period_ms // 1000
    pcm = alsaaudio.PCM(alsaaudio.PCM_CAPTURE, alsaaudio.PCM_NORMAL, device=cap.device,
                        rate=cap.rate, channels=cap.channels, format=fmt,
                        periodsize=period, periods=4)
    try:
        want, got, overruns, chunks = int(cap.rate * seconds), 0, 0, []
        while got < want:
            n, raw = pcm.read()
            if n < 0:
                overruns += 1
                continue
            chunks.append(raw)
            got += n
        return to_float(b"".join(chunks), cap.format, cap.channels), overruns
    finally:
        pcm.close()


def _capture_recording(device: str) -> Check:
    from pivox.audio.base import DeviceError
    from pivox.audio.wavfile import read_wav

    try:
        pcm = read_wav(device[4:])
    except DeviceError as exc:
        return Check("capture", FAIL, str(exc), "fix [audio.capture] device")
    x = (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).reshape(-1, 1)
    return Check("capture", PASS, f"{device} is a recording, not a microphone "
                 f"({len(x) / 16000:.1f} s): {describe_levels(meter(x))}")


def check_capture(ctx: Context) -> Check:
    cap = ctx.cfg.audio.capture
    if cap.device.startswith("wav:"):
        return _capture_recording(cap.device)
    setting = f"{cap.device} ({cap.rate} Hz, {cap.channels} ch, {cap.format})"
    done, result, said = alsa_call(lambda: _read_alsa(cap, ctx.capture_s), ctx.capture_s + 4)
    alsa = libasound_said(said)
    if not done:
        return Check("capture", FAIL, f"{setting} opened but delivered no audio in "
                     f"{ctx.capture_s + 4:.0f} s{alsa}",
                     f"check the microphone's clock and overlay; try: arecord -D {cap.device}"
                     f" -r {cap.rate} -c {cap.channels} -f {cap.format} -d 2 /tmp/t.wav")
    if isinstance(result, BaseException):
        text = str(result)
        if busy(text) and ctx.daemon is not None:
            audio = ctx.daemon.get("audio", {})
            return Check("capture", WARN, f"{setting} is in use by the running daemon "
                         f"({audio.get('frames', 0)} frames, {audio.get('overruns', 0)} "
                         f"overruns)", "to meter it here: sudo systemctl stop pivox; "
                         "pivox diag; sudo systemctl start pivox")
        return _would_not_open("capture", f"{setting}: {text}", alsa,
                               "list devices with: arecord -L; set [audio.capture] device, "
                               "rate, channels and format to what the card offers")
    x, overruns = result
    levels = meter(x)
    detail = f"{setting}, {len(x) / cap.rate:.1f} s: {describe_levels(levels)}"
    if overruns:
        detail += f"; {overruns} overruns"
    if cap.channels > 1:
        detail += (f"; the daemon uses channel {cap.channel}" if cap.channel >= 0
                   else "; the daemon mixes all channels")
    detail += alsa
    card = cap.device.split("CARD=")[-1].split(",")[0] if "CARD=" in cap.device else "N"
    if all(lv["peak_dbfs"] <= FLOOR_DB for lv in levels):
        return Check("capture", WARN, detail + ": only digital silence",
                     f"the capture path is muted or unpowered: alsamixer -c {card} (F4, "
                     "capture), and check the sound card overlay")
    if any(lv["clipped"] for lv in levels):
        return Check("capture", WARN, detail, f"lower the capture gain: alsamixer -c {card}")
    return Check("capture", PASS, detail)


def tone(rate: int, seconds: float = 0.5, freq: float = 660.0, level: float = 0.25
         ) -> bytes:
    n = int(rate * seconds)
    t = np.arange(n) / rate
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks
    x = level * ramp * np.sin(2 * np.pi * freq * t)
    return np.round(x * 32767).astype("<i2").tobytes()


def _play_tone(pb: config_mod.PlaybackConfig, sound: bool) -> int:
    from pivox.audio.alsa import AlsaSink

    sink = AlsaSink(pb.device, pb.rate, pb.channels, pb.period_ms)
    try:
        if sound:
            pcm = tone(pb.rate, level=0.25 * pb.volume)
            step = sink.period_frames * 2
            for i in range(0, len(pcm), step):
                chunk = pcm[i : i + step]
                sink.write(chunk + bytes(step - len(chunk)))
            with contextlib.suppress(Exception):
                sink._pcm.drain()
        return sink.underruns
    finally:
        sink.close()


def check_playback(ctx: Context) -> Check:
    pb = ctx.cfg.audio.playback
    if pb.device.startswith("wav:"):
        parent = Path(pb.device[4:]).parent
        if not os.access(parent, os.W_OK):
            return Check("playback", FAIL, f"{pb.device}: {parent} is not writable",
                         "fix [audio.playback] device")
        return Check("playback", PASS, f"{pb.device} records to a file, not a speaker "
                     "(no test tone)")
    setting = f"{pb.device} ({pb.rate} Hz, {pb.channels} ch)"
    done, result, said = alsa_call(lambda: _play_tone(pb, not ctx.no_sound), 8)
    alsa = libasound_said(said)
    if not done:
        return Check("playback", FAIL, f"{setting} opened but would not play{alsa}",
                     f"try: speaker-test -D {pb.device} -c {pb.channels} -t sine -l 1")
    if isinstance(result, BaseException):
        text = str(result)
        if busy(text) and ctx.daemon is not None:
            return Check("playback", WARN, f"{setting} is in use by the running daemon",
                         "to test it here: sudo systemctl stop pivox; pivox diag")
        return _would_not_open("playback", f"{setting}: {text}", alsa,
                               "list devices with: aplay -L; set [audio.playback] device")
    what = "opens (no tone: --no-sound)" if ctx.no_sound else \
        f"played a 0.5 s tone at volume {pb.volume}"
    detail = f"{setting} {what}" + (f"; {result} underruns" if result else "") + alsa
    return Check("playback", PASS, detail)


def check_wake(ctx: Context) -> Check:
    from pivox.audio.wavfile import read_wav
    from pivox.wake import engine_for, make_engine

    data = Path(str(resources.files("pivox") / "data"))
    manifest = json.loads((data / "demo_mic.json").read_text())
    sample_kw = manifest["keyword"]
    wake = ctx.cfg.wake
    try:
        engine = engine_for(wake)
    except Exception as exc:
        return Check("wake", FAIL, f"{wake.engine}/{wake.keyword} will not load: "
                     f"{type(exc).__name__}: {exc}",
                     "reinstall: sudo scripts/install (the engine ships in the venv)")
    if engine.fallback_reason:
        return Check("wake", WARN, f"{wake.engine} cannot start ({engine.fallback_reason}); "
                     f"the speaker listens for okay_nabu instead",
                     "fix the engine's key or model file, then: sudo systemctl restart pivox")
    tested = engine if sample_kw in engine.keywords else make_engine("micro", [sample_kw])
    pcm = read_wav(data / "demo_mic.wav")
    frame = 640
    heard_at = None
    cpu0 = time.process_time()
    for i in range(0, len(pcm), frame):
        if tested.process(pcm[i : i + frame]):
            heard_at = (i + frame) / 32000
            break
    cpu = time.process_time() - cpu0
    if heard_at is None:
        return Check("wake", FAIL, f"{wake.engine} did not hear {sample_kw} in the bundled "
                     f"recording (it ends at {manifest['keyword_end_s']} s)",
                     "set [wake] cutoff = 0 (the model's own threshold) and try again")
    detail = (f"{wake.engine} heard {sample_kw} at {heard_at:.2f} s of the bundled recording "
              f"(the word ends at {manifest['keyword_end_s']} s; {cpu * 1000:.0f} ms CPU)")
    if tested is not engine:
        detail += (f"; {', '.join(engine.keywords)} ({engine.name}) loads "
                   "(no recording of it to test)")
    return Check("wake", PASS, detail)
