"""The audio formats, pinned: these numbers are the wire protocol's and the devices', so a
change to one must be a decision, not an accident of a refactor."""

from __future__ import annotations

from pivox.core import formats as f
from pivox.link import codec


def test_microphone_and_model_formats() -> None:
    assert (f.MIC_RATE, f.MODEL_RATE, f.SAMPLE_BYTES, f.CHANNELS) == (16000, 24000, 2, 1)
    assert (f.MIC_MIME, f.MODEL_MIME) == ("audio/pcm;rate=16000", "audio/pcm;rate=24000")


def test_frame_sizes() -> None:
    assert (f.FRAME_MS, f.FRAME_BYTES, f.FRAME_SAMPLES) == (20, 640, 320)
    assert f.frame_bytes(10) == 320 and f.frame_bytes(40, f.MODEL_RATE) == 1920


def test_the_codec_and_the_reference_server_use_them() -> None:
    from pivox.reference import rules, session

    assert codec.INPUT_MIME == "audio/pcm;rate=16000" and codec.OUTPUT_RATE == 24000
    assert session.CHUNK_BYTES == 1920  # 40 ms of 24 kHz s16le
    assert rules.decode_audio({"mimeType": "audio/pcm", "data": ""}, "x") == (b"", 16000)
