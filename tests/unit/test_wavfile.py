"""Recordings come from anything (phones, sox, DAWs): every common WAV encoding reads as
the same 16 kHz mono audio, and a file that is not one says so."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from pivox.audio.base import DeviceError
from pivox.audio.wavfile import read_wav


def tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * 440 * t)


def write_pcm(path: Path, x: np.ndarray, rate: int, width: int, channels: int) -> None:
    x = np.repeat(x[:, None], channels, axis=1).reshape(-1)
    if width == 1:
        raw = np.round(x * 127 + 128).astype("u1").tobytes()
    elif width == 3:
        v = np.round(x * (2**23 - 1)).astype("<i4")
        raw = v.view("u1").reshape(-1, 4)[:, :3].tobytes()
    else:
        raw = np.round(x * (2 ** (8 * width - 1) - 1)).astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def write_riff(path: Path, x: np.ndarray, rate: int, channels: int, extensible: bool) -> None:
    """32-bit float, optionally as WAVE_FORMAT_EXTENSIBLE (what sox writes for it)."""
    data = np.repeat(x[:, None], channels, axis=1).astype("<f4").tobytes()
    block = 4 * channels
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, 32, 22,
                          32, 0) + struct.pack("<H", 3) + bytes(14)
    else:
        fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def level(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float) / 32768
    return float(np.sqrt(np.mean(x[800:-800] ** 2)))


@pytest.mark.parametrize(("rate", "width", "channels"), [
    (16000, 2, 1), (8000, 1, 1), (44100, 2, 2), (48000, 3, 2), (22050, 4, 1), (48000, 2, 6)])
def test_pcm_of_any_width_rate_and_channels_reads_as_16k_mono(tmp_path: Path, rate: int,
                                                              width: int, channels: int):
    path = tmp_path / "x.wav"
    write_pcm(path, tone(rate), rate, width, channels)
    pcm = read_wav(path)
    assert len(pcm) // 2 == pytest.approx(8000, abs=2)
    assert level(pcm) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


@pytest.mark.parametrize("extensible", [False, True])
def test_float_and_extensible_wavs_read(tmp_path: Path, extensible: bool):
    path = tmp_path / "f.wav"
    write_riff(path, tone(48000), 48000, 4, extensible)
    pcm = read_wav(path)
    assert len(pcm) // 2 == pytest.approx(8000, abs=2)
    assert level(pcm) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


@pytest.mark.parametrize("content", [b"", b"not a wav at all", b"RIFF\x04\x00\x00\x00WAVE"])
def test_a_file_that_is_not_a_wav_is_a_clear_error(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(DeviceError, match=r"bad\.wav: not a readable WAV"):
        read_wav(path)
