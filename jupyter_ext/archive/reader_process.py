"""What a reader process runs: ``python -m jupyter_ext.archive.reader_process``.

It reads, hashes and compresses batches of small files for the archiver
(:mod:`.readers` starts and feeds it), and writes the blobs the archiver keeps
into a pack of its own: the payloads never cross the pipe (carrying them, then
writing and hashing them in the archiver, was a fifth of the archiver's time on
trees of small files, and the archiver's process is what limits them). Two of
these run beside the archiver, so their memory counts: this module imports
:mod:`.blobs`, :mod:`.framing` and :mod:`.sources` and nothing else of lens.

On stdin and stdout, :mod:`.framing`'s messages, answered in order:
- ``(READ, level, [(path, dev, ino, size), ...])``: the batch is read; the answer
  is one item per file (:func:`read_files`), and the payloads wait here;
- ``(KEEP, mask, path)``: of the oldest waiting batch, the payloads whose byte of
  ``mask`` is 1 are appended to the pack (a new one at ``path``, a temp file the
  archiver made, when ``path`` is given); no answer. The archiver knows each
  blob's place from the sizes it was told;
- ``(SEAL,)``: the pack is closed; the answer is ``(its BLAKE3 hex, its size)``.

A reader exits when its stdin closes, so one left behind by a killed archiver
goes with it.
"""

from __future__ import annotations

import os
import sys
from collections import deque

import blake3

from .blobs import CODEC_BYTE, PACK_MAGIC, chunk_id, encode_parts
from .framing import frame, read_message, write_all
from .sources import Changed, Source, open_source

READ, KEEP, SEAL = "r", "k", "s"
OK, GREW, FAILED = 0, 1, 2


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


class PackFile:
    """The pack this reader fills: kept blobs are appended (one write a batch) and
    hashed on the way. The archiver made the file, and stores it once sealed."""

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        self.hasher = blake3.blake3()
        self.size = 0
        self.add([PACK_MAGIC])

    def add(self, parts: list) -> None:
        """Append ``parts`` (``writev``: no joined copy, whose MiB-sized buffers kept
        the reader's heap high)."""
        write_all(self.fd, parts)
        for part in parts:
            self.hasher.update(part)
            self.size += len(part)

    def seal(self) -> tuple[str, int]:
        os.close(self.fd)
        return self.hasher.hexdigest(), self.size


def main() -> None:
    """The reader's loop, until stdin closes."""
    stdin, out = sys.stdin.buffer, sys.stdout.fileno()
    waiting: deque = deque()  # per batch read, its blobs (codec byte, payload)
    pack = None
    while (request := read_message(stdin)) is not None:
        if request[0] == READ:
            items, blobs = [], []
            for item, payload in read_files(request[2], request[1]):  # a file at a time
                items.append(item)
                if payload:
                    blobs.append((CODEC_BYTE[item[1][2]], payload))
            waiting.append(blobs)
            write_all(out, [frame(items)])
        elif request[0] == KEEP:
            _, mask, path = request
            if path:
                pack = PackFile(path)
            kept = [part for keep, blob in zip(mask, waiting.popleft(), strict=True)
                    if keep for part in blob]
            if kept:
                pack.add(kept)
        else:
            write_all(out, [frame(pack.seal())])
            pack = None


if __name__ == "__main__":
    main()
