"""The daemon, split by what it does.

`main` (the loop: events in, machine, tasks), `wiring` (parts built from config),
`actions` (the machine's actions carried out), `commands` (control socket and buttons),
`status` (a pure function of snapshots), `supervisor` (tasks, threads, the watchdog) and
`faults` (a debug-only hook that kills or wedges a part).
"""

from pivox.daemon.main import Daemon, run_daemon

__all__ = ["Daemon", "run_daemon"]
