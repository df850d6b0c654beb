"""How long after a keyword's end each engine fires: what the capture thread needs to start
the model's audio after the keyword rather than inside it.

An engine decides on a window of audio (microWakeWord's features every 10 ms and its
model's stride, openWakeWord's 80 ms embeddings over a 1.28 s window), so its detection
lags the end of the spoken keyword by an amount that varies per utterance. The ranges
below are (earliest, latest) lag in seconds, measured with `scripts/measure-wake-lag` on
tests/fixtures (wake_*.wav) and every clean and noisy positive in tests/wake_corpus that
the engine detects (speech end taken where the clean clip's 10 ms RMS last exceeds 200).
A negative lag means the engine can fire before the keyword is over.

Measured 2026-12-02 (pymicro-wakeword 2.5, pyopen-wakeword 1.1); detections per keyword in
the comments. Porcupine could not be measured here (it needs an AccessKey and the network):
its range is a wide guess from its 32 ms frames, to be replaced by a measurement.
"""

from __future__ import annotations

Lag = tuple[float, float]

LAG_S: dict[str, dict[str, Lag]] = {
    "micro": {
        "okay_nabu": (0.09, 0.27),  # 16 detections
        "hey_jarvis": (0.15, 0.27),  # 2
        "hey_mycroft": (0.01, 0.20),  # 11
        "alexa": (0.17, 0.34),  # 28
    },
    "openwakeword": {
        "okay_nabu": (0.29, 0.57),  # 11
        "hey_jarvis": (-0.11, 0.50),  # 26
        "hey_rhasspy": (-0.01, 0.28),  # 23
        "alexa": (-0.06, 0.31),  # 16
    },
}
# A keyword not measured (a custom model): the engine's widest range.
ENGINE_LAG_S: dict[str, Lag] = {
    "micro": (0.01, 0.34),
    "openwakeword": (-0.11, 0.57),
    "porcupine": (0.0, 0.4),
}


def lag_s(engine: str, keyword: str) -> Lag:
    """(earliest, latest) seconds between the end of `keyword` and `engine` firing on it."""
    return LAG_S.get(engine, {}).get(keyword) or ENGINE_LAG_S.get(engine, (0.0, 0.4))
