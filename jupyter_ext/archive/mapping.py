"""A range of a local file mapped from the page cache.

A restore reads pack ranges this way: no copy into a fresh buffer, whose pages
the kernel would fault in and zero first (a quarter of the CPU of a restore of
big files). Writer processes import this module and little else.
"""

from __future__ import annotations

import mmap
import os


def map_range(path: str, start: int, length: int) -> memoryview:
    """``length`` bytes of ``path`` from ``start``, clipped to the file's size, so no
    mapped page lies past its end (packs are written under a temp name and renamed,
    never truncated in place); FileNotFoundError if it is missing. Where the file
    system cannot map files, a plain read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = min(os.fstat(fd).st_size, start + length)
        if end <= start:
            return memoryview(b"")
        base = start - start % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(fd, end - base, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                               prot=mmap.PROT_READ, offset=base)
        except OSError:  # a file system that cannot map files: a plain read
            return memoryview(os.pread(fd, end - start, start))
    finally:
        os.close(fd)
    return memoryview(mapped)[start - base:]  # unmapped when the last view goes
