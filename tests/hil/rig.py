"""Audio rigs for hardware-in-the-loop tests: a real-time microphone and speaker.

`PulseRig` (CI, any Linux box): PulseAudio started here with a real clock. A null sink is
the speaker, a pipe source the microphone, both reached by the daemon through ALSA's
`pulse` plugin, so it runs on real libasound exactly as on a Pi. The sink's monitor is
recorded with arrival times, so a test can say when the speaker fell silent.

`AloopRig` (a Pi with snd-aloop, see scripts/hil-loopback): the same interface over the
kernel loopback card. Chosen with PIVOX_HIL=aloop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

MIC_RATE = 16000
SPK_RATE = 48000
PERIOD_S = 0.02


class Recorder:
    """Reads a speaker recording as it happens, noting when each chunk arrived."""

    def __init__(self, cmd: list[str], env: dict[str, str], rate: int) -> None:
        self.rate = rate
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      env=env)
        self._chunks: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(960):  # type: ignore[attr-defined]
            with self._lock:
                self._chunks.append((time.monotonic(), chunk))

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """All samples so far and, for each, the monotonic time it reached us."""
        with self._lock:
            chunks = list(self._chunks)
        data = b"".join(c for _, c in chunks)
        n = len(data) // 2
        times = np.empty(n)
        pos = 0
        for t, c in chunks:
            k = len(c) // 2
            times[pos : pos + k] = t - (k - 1 - np.arange(k)) / self.rate
            pos += k
        return np.frombuffer(data[: n * 2], dtype="<i2").astype(np.float32), times

    def stop(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=3)
        self._thread.join(timeout=3)


class EchoPath:
    """The room: what the speaker plays comes back into the microphone, later and quieter.

    Reads the speaker's monitor at 16 kHz as it plays and hands it to the microphone feeder
    `delay_s` later, scaled by `gain`, so the daemon hears itself as on a real device. A
    room's delay never grows: monitor audio that comes too late for its moment (a busy
    machine) is skipped when it comes, not heard that much later from then on.
    """

    def __init__(self, cmd: list[str], env: dict[str, str], gain: float, delay_s: float) -> None:
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      env=env)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._gain = gain
        self._delay = int(delay_s * MIC_RATE) * 2
        self._started = False
        self._late = 0  # bytes handed over as silence for want of audio: skipped on arrival
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(640):  # type: ignore[attr-defined]
            with self._lock:
                skip = min(self._late, len(chunk))
                self._late -= skip
                self._buf += chunk[skip:]

    def take(self, nbytes: int) -> np.ndarray:
        with self._lock:
            if not self._started and len(self._buf) < self._delay + nbytes:
                return np.zeros(nbytes // 2, dtype=np.float32)
            self._started = True
            chunk = bytes(self._buf[:nbytes])
            del self._buf[:nbytes]
            if len(chunk) < nbytes:  # the rest is late: silence now, skipped when it comes
                # (up to a moment's worth: a monitor that stopped is no room echoing late)
                self._late = min(self._late + nbytes - len(chunk), self._delay + nbytes)
                chunk += bytes(nbytes - len(chunk))
        return np.frombuffer(chunk, dtype="<i2").astype(np.float32) * self._gain

    def stop(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=3)


class Feeder:
    """Plays audio into the microphone at real time; silence when there is nothing to say.
    With an echo path, the room's echo of the speaker is mixed in."""

    def __init__(self, open_out: callable) -> None:  # type: ignore[valid-type]
        self._open_out = open_out
        self.echo: EchoPath | None = None
        self._queue: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def say(self, pcm16k: bytes) -> float:
        """Queue speech; returns how long until it has all been spoken, in seconds."""
        period = int(MIC_RATE * PERIOD_S) * 2
        with self._lock:
            for i in range(0, len(pcm16k), period):
                chunk = pcm16k[i : i + period]
                self._queue.append(chunk + bytes(period - len(chunk)))
            return len(self._queue) * PERIOD_S

    def _run(self) -> None:
        period = int(MIC_RATE * PERIOD_S) * 2
        out = None
        start, n = time.monotonic(), 0
        while not self._stop.is_set():
            if self.paused.is_set():
                if out is not None:
                    with contextlib.suppress(OSError):
                        out.close()
                    out = None
                time.sleep(PERIOD_S)
                start, n = time.monotonic(), 0
                continue
            if out is None:
                try:
                    out = self._open_out()
                except OSError:
                    time.sleep(0.05)
                    continue
                start, n = time.monotonic(), 0
            with self._lock:
                chunk = self._queue.popleft() if self._queue else bytes(period)
            if self.echo is not None:
                mixed = np.frombuffer(chunk, dtype="<i2") + self.echo.take(period)
                chunk = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
            try:
                out.write(chunk)
                out.flush()
            except OSError:
                out = None
                continue
            n += 1
            delay = start + n * PERIOD_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)


class PulseRig:
    mic_device = "pivox_mic"
    spk_device = "pivox_spk"
    can_remove_mic = True
    can_echo = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "native"
        self.mic_sock = root / "mic-native"
        self.fifo = root / "mic.fifo"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(root), "HOME": str(root),
                    "PULSE_SERVER": f"unix:{self.sock}"}
        self.asoundrc = root / "asoundrc"
        self.asoundrc.write_text(
            f'pcm.{self.mic_device} {{ type pulse; server "unix:{self.mic_sock}"; '
            f'device "mic" }}\n'
            f'pcm.{self.spk_device} {{ type pulse; server "unix:{self.sock}"; '
            f'device "spk" }}\n')
        self.env["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{self.asoundrc}"
        self._servers: list[subprocess.Popen] = []
        self._mic_module = ""
        self.feeder: Feeder | None = None

    @staticmethod
    def available() -> str:
        """Empty when the rig can run here, else why not."""
        for tool in ("pulseaudio", "pactl", "parec"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (scripts/bootstrap installs it)"
        if not Path("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so").exists() \
                and not list(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so")):
            return "ALSA's pulse plugin (libasound2-plugins) is not installed"
        return ""

    def pactl(self, *args: str, sock: Path | None = None) -> str:
        env = {**self.env, "PULSE_SERVER": f"unix:{sock or self.sock}"}
        return subprocess.run(["pactl", *args], env=env, check=True, capture_output=True,
                              text=True, timeout=10).stdout.strip()

    def _pulse(self, sock: Path, *modules: str) -> None:
        """One PulseAudio server. The microphone gets its own, with no other source, so
        that removing it ends the stream instead of moving it to a monitor source."""
        args = ["pulseaudio", "--daemonize=no", "-n", "--exit-idle-time=-1",
                "--use-pid-file=no", "--disallow-exit", "--log-target=stderr",
                "--log-level=error", "-L",
                f"module-native-protocol-unix socket={sock} auth-anonymous=1"]
        for m in modules:
            args += ["-L", m]
        env = {**self.env, "PULSE_RUNTIME_PATH": str(sock) + ".d"}
        self._servers.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.pactl("info", sock=sock)
                return
            time.sleep(0.1)
        raise RuntimeError("PulseAudio did not start")

    def start(self) -> None:
        self._pulse(self.sock, f"module-null-sink sink_name=spk rate={SPK_RATE} channels=1",
                    "module-always-sink")
        self._pulse(self.mic_sock)
        self.restore_mic()
        self.feeder = Feeder(lambda: open(self.fifo, "wb", buffering=0))  # noqa: SIM115

    def restore_mic(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fifo.unlink()
        self._mic_module = self.pactl(
            "load-module", "module-pipe-source", "source_name=mic", f"file={self.fifo}",
            "format=s16le", f"rate={MIC_RATE}", "channels=1", sock=self.mic_sock)
        if self.feeder is not None:
            self.feeder.paused.clear()

    def remove_mic(self) -> None:
        """Like pulling out a USB microphone: the source vanishes under the daemon."""
        if self.feeder is not None:
            self.feeder.paused.set()
        self.pactl("unload-module", self._mic_module, sock=self.mic_sock)

    def add_echo(self, gain: float = 0.5, delay_s: float = 0.03) -> EchoPath:
        """Let the microphone hear the speaker (see EchoPath)."""
        assert self.feeder is not None
        path = EchoPath(["parec", "-d", "spk.monitor", "--raw", "--format=s16le",
                         f"--rate={MIC_RATE}", "--channels=1", "--latency-msec=10"],
                        self.env, gain, delay_s)
        self.feeder.echo = path
        return path

    def record(self) -> Recorder:
        return Recorder(["parec", "-d", "spk.monitor", "--raw", "--format=s16le",
                         f"--rate={SPK_RATE}", "--channels=1", "--latency-msec=10"],
                        self.env, SPK_RATE)

    def stop(self) -> None:
        if self.feeder is not None:
            self.feeder.stop()
            if self.feeder.echo is not None:
                self.feeder.echo.stop()
        for server in self._servers:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=5)


class AloopRig:
    """The same rig on a Raspberry Pi over the kernel's snd-aloop card (scripts/hil-loopback).

    The daemon plays to Loopback,0,0 and the rig records Loopback,1,0; the rig plays into
    Loopback,0,1 and the daemon captures Loopback,1,1. A kernel card cannot be unplugged
    and the echo path needs a second reader, so those two scenarios run on PulseRig only.
    """

    mic_device = "pivox_mic"
    spk_device = "pivox_spk"
    can_remove_mic = False
    can_echo = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.asoundrc = root / "asoundrc"
        self.asoundrc.write_text(
            f'pcm.{self.mic_device} {{ type plug; slave.pcm "hw:Loopback,1,1" }}\n'
            f'pcm.{self.spk_device} {{ type plug; slave.pcm "hw:Loopback,0,0" }}\n')
        self.env = {**os.environ,
                    "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{self.asoundrc}"}
        self.feeder: Feeder | None = None
        self._players: list[subprocess.Popen] = []

    @staticmethod
    def available() -> str:
        if not Path("/proc/asound/Loopback").exists():
            return "no snd-aloop card (run scripts/hil-loopback on a Pi)"
        for tool in ("aplay", "arecord"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (alsa-utils)"
        return ""

    def _open_mic(self):  # type: ignore[no-untyped-def]
        proc = subprocess.Popen(["aplay", "-q", "-D", "hw:Loopback,0,1", "-t", "raw",
                                 "-f", "S16_LE", "-r", str(MIC_RATE), "-c", "1"],
                                stdin=subprocess.PIPE, env=self.env)
        self._players.append(proc)
        return proc.stdin

    def start(self) -> None:
        self.feeder = Feeder(self._open_mic)

    def record(self) -> Recorder:
        return Recorder(["arecord", "-q", "-D", "hw:Loopback,1,0", "-t", "raw", "-f", "S16_LE",
                         "-r", str(SPK_RATE), "-c", "1"], self.env, SPK_RATE)

    def remove_mic(self) -> None:
        raise NotImplementedError("a kernel loopback card cannot be unplugged")

    restore_mic = remove_mic

    def add_echo(self, gain: float = 0.5, delay_s: float = 0.03) -> EchoPath:
        raise NotImplementedError("the echo path needs a second reader of the speaker")

    def stop(self) -> None:
        if self.feeder is not None:
            self.feeder.stop()
        for proc in self._players:
            proc.terminate()
