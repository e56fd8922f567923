"""A scanned file and opening it again as the scan saw it.

The scan keeps each file's identity (st_dev, st_ino) with its path: a
:class:`Source`. Whoever reads the file later (the archiver, a reader process)
opens it with ``O_NOFOLLOW|O_NONBLOCK`` and reads it only if ``fstat`` shows the
same regular file (``open_source``). Reader processes import this module and
little else.
"""

from __future__ import annotations

import errno
import os
import stat

READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Source(os.PathLike):
    """An absolute source path plus the identity the scan saw there (slots: one per
    scanned file, so trees of many files stay small in memory)."""

    __slots__ = ("path", "dev", "ino")

    def __init__(self, path: str, dev: int = 0, ino: int = 0):
        self.path, self.dev, self.ino = path, dev, ino

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"Source({self.path!r}, dev={self.dev}, ino={self.ino})"


class Changed(OSError):
    """The path no longer holds the regular file the scan saw (skipped, reported)."""


def open_source(src: Source) -> int:
    """An fd of the scanned regular file at ``src``, never following a link and
    never blocking on a FIFO; :class:`Changed` if something else is there now."""
    try:
        fd = os.open(src, READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Changed(exc.errno, "replaced by a symlink after the scan; not followed") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Changed(errno.EINVAL, f"replaced by a {_kind(st.st_mode)} after the scan; "
                          "skipped")
        if (st.st_dev, st.st_ino) != (src.dev, src.ino):
            raise Changed(errno.EINVAL, "replaced by another file after the scan; skipped")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
