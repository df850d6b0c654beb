"""Keep the daemon's memory flat over weeks: glibc malloc tuning, set from inside.

Audio work allocates and frees many blocks of 100 kB to a few MB (replies, prompts,
resampled buffers). glibc raises its mmap threshold each time such a block is freed, so
later ones come from the heap instead, where they fragment it and resident memory only
ever grows (measured in the soak: 70 -> 118 MB in two minutes; with a fixed threshold,
61 MB flat). A fixed threshold keeps big blocks in their own mappings, returned to the
system when freed; two arenas are plenty for one loop and two audio threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("pivox.allocator")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own default, held fixed
ARENA_MAX = 2


def tune() -> bool:
    """Apply the settings; False where the C library is not glibc (nothing to tune)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX,
                                                                          ARENA_MAX))
    if not ok:
        log.warning("could not tune malloc; memory may grow with fragmentation")
    return ok
