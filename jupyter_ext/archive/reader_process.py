"""What a reader process runs: ``python -m jupyter_ext.archive.reader_process``.

It reads, hashes and compresses batches of small files for the archiver
(:mod:`.readers` starts and feeds it). Two of these run beside the archiver, so
their memory counts: this module imports :mod:`.blobs` and :mod:`.sources` and
nothing else of lens, and its answers go out with ``writev`` every ``OUT_BYTES``
(no batch held whole).

On stdin and stdout, :mod:`.framing`'s messages:
- a request: ``(level, [(path, dev, ino, size), ...])``;
- its answer, per file in order: an item (:func:`read_files`), then the payload
  if the item has one.

A reader exits when its stdin closes, so one left behind by a killed archiver
goes with it.
"""

from __future__ import annotations

import os
import sys

from .blobs import chunk_id, encode_parts
from .framing import frame, read_message, write_all
from .sources import Changed, Source, open_source

OK, GREW, FAILED = 0, 1, 2
# answers gathered before a write: a write (and the archiver's wake-up) per file cost
# a fifth of a reader's time on trees of small files
OUT_BYTES = 256 * 1024


def read_one_chunk(src: Source, size: int) -> tuple:
    """Read a file scanned at ``size`` bytes (under the chunker's minimum) in one
    ``read``: ``(OK, data)``, ``(GREW, None)`` when it grew past that size since the
    scan, or ``(FAILED, reason)``. The file is opened as the scan saw it
    (``open_source``): never through a link, never a FIFO."""
    try:
        fd = open_source(src)
    except OSError as exc:
        return FAILED, exc.strerror if isinstance(exc, Changed) else str(exc)
    try:
        data = os.read(fd, size + 1)  # a short read of a regular file is its end
    except OSError as exc:
        return FAILED, str(exc)
    finally:
        os.close(fd)
    return (GREW, None) if len(data) > size else (OK, data)


def read_files(batch: list, level: int):
    """Per ``(path, dev, ino, size)`` file, in order: ``(item, payload)``. The item
    is ``(OK, None)`` for an empty file, ``(OK, (id, length, codec, payload
    length))`` with its payload, ``(GREW, None)`` when it grew past its scanned
    size (the archiver chunks it itself) or ``(FAILED, reason)``; the payload is
    ``b""`` unless the item has one."""
    for path, dev, ino, size in batch:
        status, data = read_one_chunk(Source(path, dev, ino), size)
        if status == OK and data:
            codec, payload = encode_parts(data, level)
            yield (OK, (chunk_id(data), len(data), codec, len(payload))), payload
        else:
            yield (status, None if status == OK else data), b""


def main() -> None:
    """The reader's loop: one answer per request, until stdin closes."""
    stdin, out = sys.stdin.buffer, sys.stdout.fileno()
    while (request := read_message(stdin)) is not None:
        level, batch = request
        parts: list = []
        size = 0
        for item, payload in read_files(batch, level):  # one file read at a time
            head = frame(item)
            parts += (head, payload)
            size += len(head) + len(payload)
            if size >= OUT_BYTES:
                write_all(out, parts)
                parts, size = [], 0
        write_all(out, parts)  # the rest: the archiver waits for the whole answer


if __name__ == "__main__":
    main()
