"""Where the wake word ended, so the model's audio starts after it.

Whatever the device streams after the wake event is "the user" to a server that ends a
turn after a short silence following speech: if the stream began with the keyword's tail
and the user then waited for the chime, the server would answer the wake word. The wake
engine fires some time after the keyword ends (its measured lag range, wake/timing.py);
the pre-roll ring is cut where, inside that range, the keyword's sound stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

# The wake word is not the user's turn: the model's audio starts where the keyword ended.
# Beyond the engine's measured lag range: generous on the early side (a tail of the keyword
# running into the question is harmless), small on the late side (a gap between the
# question's first words must not pass for the keyword's end).
EARLY_MARGIN_S = 0.06
LATE_MARGIN_S = 0.02
QUIET_RUN = 4  # frames (80 ms): longer than a gap between words, shorter than a pause
QUIET_DB = 10.0  # a frame this close to the noise floor holds no speech...
BELOW_PEAK_DB = 35.0  # ...nor does one this far below the keyword's loudest frame
HELD_MAX_FRAMES = 100  # after a cut, frames wait this long for StartUplink (2 s)


@dataclass(frozen=True)
class Cut:
    """A wake word was heard at `wake_t`; it ended `lag` = (earliest, latest) before."""

    wake_t: float
    lag: tuple[float, float]

    @property
    def decide_at(self) -> float:  # the latest end, and a quiet run after it
        return self.wake_t - self.lag[0] + LATE_MARGIN_S + QUIET_RUN * 0.02


def keyword_cut(frames: list[tuple[bytes, float, float]], cut: Cut, floor_db: float) -> int:
    """Index of the first frame after the keyword in `frames` (pcm, end time, level dBFS).

    The keyword ended somewhere in the engine's lag range before the wake event: the first
    quiet run (QUIET_RUN frames) in that range is where it stopped. Without one, the user went
    straight on into the question, and the cut goes to the range's start, so no word of the
    question is lost (a tail of the keyword running into speech is harmless)."""
    lo_t = cut.wake_t - cut.lag[1] - EARLY_MARGIN_S
    hi_t = cut.wake_t - cut.lag[0] + LATE_MARGIN_S
    window = [i for i, (_, t, _) in enumerate(frames) if lo_t <= t <= hi_t]
    if not window:
        return 0
    peak = max(level for _, _, level in frames)
    quiet = max(floor_db + QUIET_DB, peak - BELOW_PEAK_DB)
    for i in window:
        run = frames[i : i + QUIET_RUN]
        if len(run) == QUIET_RUN and all(level < quiet for _, _, level in run):
            return i
    return window[0]
