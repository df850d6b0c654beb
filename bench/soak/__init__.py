"""scripts/soak --minutes N [--seed S] [--json]: conversations for N minutes, under faults.

The real daemon listens to a recorded microphone that says "Okay Nabu. What's the weather
like today?" over and over and talks to the bundled reference server, while faults are
injected at random intervals. Exit status 1 when there was a crash or a hang.

  rig.py      the daemon, the server and the watchers in one loop (crashes, hangs, RSS)
  devices.py  the looping, unpluggable microphone and the null speaker
  faults.py   the fault schedule: which fault, when, and whether it was applied
  report.py   conversations from the daemon's states, and the figures printed
  __main__.py the command line
"""

from bench.soak.report import rss_mb
from bench.soak.rig import Soak

__all__ = ["Soak", "rss_mb"]
