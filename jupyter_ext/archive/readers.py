"""Reader processes for trees of many small files.

A small file costs the archiver Python time (open, read, hash, compress, book-
keeping), and threads only contend for the GIL over it. Reader processes take the
open/read/hash/compress part, a batch of files at a time, on every core; the
archiver keeps what must stay in one place (deduplication, packs, the file table).

This module is the archiver's side: :class:`ReaderPool` starts the processes
and feeds them. What each one runs is :mod:`.reader_process`.
"""

from __future__ import annotations

from .framing import read_message
from .helpers import HelperPool
from .reader_process import OK

BATCH_FILES = 128               # files per request
BATCH_BYTES = 1024 * 1024       # scanned bytes per request
BATCH_PATHS = 24 * 1024         # path bytes per request: a request always fits a pipe


class ReaderPool(HelperPool):
    """Reader processes for the archiver; each request is under ``BATCH_PATHS``
    bytes of paths."""

    what = "reader process"
    again = "archive again"

    def __init__(self, n: int, level: int):
        super().__init__("jupyter_ext.archive.reader_process", n)
        self.level = level

    def submit(self, items: list, batch: list) -> None:
        """Queue ``batch`` (``(path, dev, ino, size)`` per file); ``items`` comes back
        with its answer."""
        super().submit((self.level, batch), items)

    def next_answer(self) -> tuple[list, list]:
        """(items, answers) of the oldest request: per file, ``(status, value)`` as
        :func:`.reader_process.read_files` gives it, with a payload's length
        replaced by the payload."""
        proc, items = self.queue.popleft()
        stream, answers = proc.stdout, []
        for _ in items:
            answer = read_message(stream)
            if answer is None:
                self.stopped(proc)
            status, value = answer
            if status == OK and value is not None:
                cid, n, codec, size = value
                payload = stream.read(size)
                if len(payload) != size:
                    self.stopped(proc)
                answer = (OK, (cid, n, codec, payload))
            answers.append(answer)
        return items, answers


def batches(items):
    """Group ``(seq, entry, src)`` items into requests under the batch limits."""
    batch, size, paths = [], 0, 0
    for item in items:
        n = len(item[2].path.encode()) + 64
        if batch and (len(batch) >= BATCH_FILES or size + item[1].size > BATCH_BYTES
                      or paths + n > BATCH_PATHS):
            yield batch
            batch, size, paths = [], 0, 0
        batch.append(item)
        size += item[1].size
        paths += n
    if batch:
        yield batch
