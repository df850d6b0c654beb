"""The speaker's audio formats: the one place their numbers are written down.

Everything inside the speaker is 16 kHz s16le mono (microphone, echo canceller, wake
engines, the uplink to the model); the model answers in 24 kHz s16le mono. Devices run at
their own rates and are resampled at the edge (audio/alsa.py, audio/playback.py).

Here in the pure core rather than in audio/base.py because the sans-I/O codec
(link/codec.py) and the reference server need these numbers too, and neither should
import the audio adapters to get them.
"""

from __future__ import annotations

MIC_RATE = 16000  # Hz: microphone audio and everything derived from it
MODEL_RATE = 24000  # Hz: the model's reply audio
SAMPLE_BYTES = 2  # s16le
CHANNELS = 1
FRAME_MS = 20  # the capture thread's frame, and the echo canceller's
# What one uplink message carries at most (Google's own quickstart sends 64 ms): fewer,
# larger messages cost a small board's one core far less, for at most 40 ms more latency.
UPLINK_MS = 60
MIC_MIME = f"audio/pcm;rate={MIC_RATE}"
MODEL_MIME = f"audio/pcm;rate={MODEL_RATE}"


def frame_bytes(frame_ms: int, rate: int = MIC_RATE) -> int:
    """Bytes of `frame_ms` of s16le mono at `rate`."""
    return rate * frame_ms // 1000 * SAMPLE_BYTES


def frames_per_message(frame_ms: int) -> int:
    """Microphone frames of `frame_ms` that make one uplink message (UPLINK_MS): the loop
    is woken for that many, and the uplink sends that many as one."""
    return max(1, UPLINK_MS // frame_ms)


FRAME_BYTES = frame_bytes(FRAME_MS)  # 640: 20 ms of microphone audio
FRAME_SAMPLES = FRAME_BYTES // SAMPLE_BYTES  # 320
