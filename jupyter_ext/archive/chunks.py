"""Content-defined chunking (FastCDC) and its repository-wide sizes. A chunk's id
and stored form (its blob) are in :mod:`.blobs`."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .blobs import MAX_CHUNK
from .errors import ConfigError

READ_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ChunkerParams:
    """FastCDC sizes. They are fixed per repository, so dedup works across archives."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 4 * 1024 * 1024

    def validate(self) -> ChunkerParams:
        if not 64 <= self.min_size <= self.avg_size <= self.max_size <= MAX_CHUNK:
            raise ConfigError(
                "chunker: need 64 <= min_size <= avg_size <= max_size <= 64 MiB, got "
                f"{self.min_size}/{self.avg_size}/{self.max_size}")
        if self.avg_size < 256:
            raise ConfigError("chunker.avg_size: must be at least 256")
        return self

    def as_dict(self) -> dict:
        return {"min_size": self.min_size, "avg_size": self.avg_size, "max_size": self.max_size}


_buffers = threading.local()


def _read_buffer(size: int) -> bytearray:
    """This thread's read buffer, reused from file to file: a fresh one per file
    cost a zero fill and a page fault per 4 KiB (about a tenth of the archiver's
    time)."""
    buf = getattr(_buffers, "buf", None)
    if buf is None or len(buf) < size:
        buf = _buffers.buf = bytearray(size)
    return buf


def iter_chunks(fileobj, params: ChunkerParams, read_size: int = READ_SIZE):
    """Yield memoryviews of the content-defined chunks of a raw binary file object.

    The file is read with ``readinto`` into this thread's buffer (a read plus the
    unfinished tail), which is reused: a yielded view is only valid until the next
    one is asked for (and until the next file on this thread), so consumers copy or
    write it before that."""
    from fastcdc import fastcdc  # here: it imports click, which reader processes never need

    read_size = max(read_size, params.max_size)
    cap = read_size + params.max_size
    mv = memoryview(_read_buffer(cap))[:cap]
    filled, eof = 0, False
    while True:
        while filled < cap:
            n = fileobj.readinto(mv[filled:])
            if not n:
                eof = True
                break
            filled += n
        if not filled:
            return
        end = 0
        for c in fastcdc(mv[:filled], params.min_size, params.avg_size, params.max_size):
            stop = c.offset + c.length
            if not eof and stop == filled and c.length < params.max_size:
                break  # the boundary may move once more data arrives
            yield mv[c.offset:stop]
            end = stop
        if eof:
            return
        tail = filled - end
        mv[:tail] = mv[end:filled]  # the unfinished tail to the front (memmove)
        filled = tail
