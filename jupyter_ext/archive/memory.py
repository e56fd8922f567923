"""Keep the archiver's peak RSS bounded: big buffers go back to the system.

glibc raises its mmap threshold each time a big mmapped block is freed (up to
32 MiB), after which 1-16 MiB read buffers and packs are carved from the heap and
the freed space is kept by the process: RSS then grows with fragmentation, not
with what is in use. A fixed threshold keeps blocks of ``MMAP_THRESHOLD`` and up
in their own mappings, returned as soon as they are freed. And glibc gives each
thread that allocates its own arena (up to 8 per core), each keeping what its
thread freed: a restore's dozen threads held ~10 MB more on a 7 GB tree than on a
2 GB one. ``ARENA_MAX`` arenas are shared by all threads instead.
"""

from __future__ import annotations

import ctypes
import threading

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
M_ARENA_MAX = -8
# decoded chunks (256 KiB - 4 MiB) and 1 MiB range reads get their own mappings: at
# 1 MiB, chunks under a MiB were carved from the heap and a restore's peak RSS was
# 1.09-1.14x higher on an 8 GB tree than on a 2 GB one; at 128 KiB, 1.06-1.08x
# (page faults on each mapping cost no measurable speed when archiving)
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2
_done = threading.Event()


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD, arena_max: int = ARENA_MAX) -> bool:
    """Set glibc's mmap threshold and arena limit once per process; False where
    not glibc. Arenas already created stay; later threads share the limit."""
    if _done.is_set():
        return True
    try:
        # the process's own symbols (libc's among them): find_library("c") would run
        # ldconfig in a child process
        libc = ctypes.CDLL(None)
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)))
        ok = bool(libc.mallopt(M_ARENA_MAX, ctypes.c_int(arena_max))) and ok
    except (OSError, AttributeError):
        return False
    if ok:
        _done.set()
    return ok
