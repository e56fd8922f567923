"""Keep the archiver's peak RSS bounded: big buffers go back to the system.

glibc raises its mmap threshold each time a big mmapped block is freed (up to
32 MiB), after which 4-16 MiB read buffers and packs are carved from the heap and
the freed space is kept by the process: RSS then grows with fragmentation, not
with what is in use. A fixed threshold keeps blocks of ``MMAP_THRESHOLD`` and up
in their own mappings, returned as soon as they are freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 4 * 1024 * 1024
_done = threading.Event()


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold once per process; False where not glibc."""
    if _done.is_set():
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(nbytes)))
    except (OSError, AttributeError):
        return False
    if ok:
        _done.set()
    return ok
