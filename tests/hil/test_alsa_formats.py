"""Every supported capture rate, channel count and sample format through real libasound.

ALSA's `file` plugin serves a raw file as the microphone and records what is played, byte
for byte (unpaced). Where no resampling happens the result must be exact; where it does,
the tone must come through at the right pitch and level.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soxr

RATES = (16000, 44100, 48000)
CHANNELS = (1, 2, 4, 6, 8)
FORMATS = ("S16_LE", "S32_LE", "S24_3LE")
SECONDS = 0.6
FRAMES = 20  # 400 ms of 20 ms frames: within the file, which the plugin would repeat


def tone_matrix(rate: int, channels: int) -> np.ndarray:
    """A different tone per channel, int16-representable so conversions can be exact."""
    n = int(rate * SECONDS)
    t = np.arange(n) / rate
    cols = [np.round(6000 * np.sin(2 * np.pi * (300 + 150 * c) * t)) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.int16)


def encode(x: np.ndarray, fmt: str) -> bytes:
    v = x.astype(np.int32)
    if fmt == "S16_LE":
        return v.astype("<i2").tobytes()
    if fmt == "S32_LE":
        return (v << 16).astype("<i4").tobytes()
    b = (v << 8).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
    return b.tobytes()


def run_probe(tmp: Path, cases: list[dict], pcms: dict[str, dict]) -> None:
    rc = tmp / "asoundrc"
    text = []
    for name, spec in pcms.items():
        io = f'infile "{spec["infile"]}"\n  file "/dev/null"' if "infile" in spec \
            else f'file "{spec["file"]}"'
        text.append(f'pcm.{name} {{\n  type file\n  slave.pcm "null"\n  {io}\n'
                    f'  format "raw"\n}}\n')
    rc.write_text("".join(text))
    env = {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{rc}"}
    probe = Path(__file__).with_name("alsa_formats_probe.py")
    subprocess.run([sys.executable, str(probe), json.dumps(cases)], env=env, check=True,
                   timeout=120)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, np.ndarray]:
    tmp = tmp_path_factory.mktemp("alsa-formats")
    cases, pcms, results = [], {}, {}
    for rate, ch, fmt in itertools.product(RATES, CHANNELS, FORMATS):
        x = tone_matrix(rate, ch)
        name = f"cap_{rate}_{ch}_{fmt.lower()}"
        infile = tmp / f"{name}.raw"
        infile.write_bytes(encode(x, fmt))
        pcms[name] = {"infile": infile}
        for channel in (-1, ch - 1):
            out = tmp / f"{name}_{channel}.out"
            cases.append({"kind": "capture", "pcm": name, "rate": rate, "channels": ch,
                          "format": fmt, "channel": channel, "frames": FRAMES,
                          "out": str(out)})
            results[(rate, ch, fmt, channel)] = out
    run_probe(tmp, cases, pcms)
    return {k: np.frombuffer(p.read_bytes(), dtype="<i2") for k, p in results.items()}


@pytest.mark.parametrize(("ch", "fmt"), list(itertools.product(CHANNELS, FORMATS)))
def test_16k_is_byte_exact(captured: dict, ch: int, fmt: str) -> None:
    x = tone_matrix(16000, ch)
    n = FRAMES * 320
    picked = captured[(16000, ch, fmt, ch - 1)]
    assert np.array_equal(picked, x[:n, ch - 1]), "one channel by index, exactly"
    mixed = captured[(16000, ch, fmt, -1)]
    expect = np.round(x[:n].astype(np.float32).mean(axis=1))
    assert np.max(np.abs(mixed - expect)) <= 1, "all channels mixed, to 1 LSB"


@pytest.mark.parametrize(("rate", "ch", "fmt"),
                         list(itertools.product((44100, 48000), CHANNELS, FORMATS)))
def test_resampled_rates_keep_pitch_and_level(captured: dict, rate: int, ch: int,
                                              fmt: str) -> None:
    got = captured[(rate, ch, fmt, ch - 1)].astype(np.float64)
    assert len(got) == FRAMES * 320
    ref = soxr.resample(tone_matrix(rate, ch)[:, ch - 1].astype(np.float64), rate, 16000)
    # Skip the resampler's start-up delay, then compare against a whole-signal resample.
    lag = int(np.argmax(np.correlate(got[1000:3000], ref[1000:1400], "valid")))
    a, b = got[1000 + lag : 1000 + lag + 3000], ref[1000 : 4000]
    assert np.corrcoef(a, b)[0, 1] > 0.999
    assert abs(np.std(a) / np.std(b) - 1) < 0.02


def test_playback_is_byte_exact(tmp_path: Path) -> None:
    pcm = (np.arange(48000) % 2000 - 1000).astype("<i2")
    src = tmp_path / "play.raw"
    src.write_bytes(pcm.tobytes())
    out = tmp_path / "speaker.raw"
    run_probe(tmp_path, [{"kind": "play", "pcm": "spk", "rate": 48000, "play": str(src)}],
              {"spk": {"file": out}})
    assert out.read_bytes() == pcm.tobytes()
