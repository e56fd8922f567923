"""Reader processes for trees of many small files.

A small file costs the archiver Python time (open, read, hash, compress, book-
keeping), and threads only contend for the GIL over it. Reader processes take the
open/read/hash/compress part, a batch of files at a time, on every core, and write
the blobs into packs of their own; the archiver keeps what must stay in one place
(deduplication: which blobs are kept, the packs' indexes, the file table).

This module is the archiver's side: :class:`ReaderPool` starts the processes,
feeds them, and keeps the index of each one's pack. What each one runs is
:mod:`.reader_process`.
"""

from __future__ import annotations

import os

from .blobs import PACK_MAGIC
from .errors import ArchiveError
from .framing import read_message
from .helpers import HelperPool
from .reader_process import KEEP, READ, SEAL

BATCH_FILES = 128               # files per request
BATCH_BYTES = 1024 * 1024       # scanned bytes per request
BATCH_PATHS = 24 * 1024         # path bytes per request: a request always fits a pipe


class ReaderPack:
    """A pack a reader process fills: its file, and the index the archiver keeps of
    it (the blobs it was told to keep, at the sizes the reader gave)."""

    def __init__(self, path: str):
        self.path = path
        self.size = len(PACK_MAGIC)
        self.chunks: list = []
        self.pid = ""

    def add(self, cid_hex: str, payload_len: int, raw_len: int) -> None:
        self.chunks.append([cid_hex, self.size, 1 + payload_len, raw_len])
        self.size += 1 + payload_len

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def sealed(self, pid: str, size: int) -> None:
        if size != self.size:
            raise ArchiveError(f"a reader process wrote a pack of {size} bytes, not "
                               f"{self.size}; archive again")
        self.pid = pid

    def seal(self) -> tuple[str, str, list]:
        return self.path, self.pid, self.chunks

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class ReaderPool(HelperPool):
    """Reader processes for the archiver; each request is under ``BATCH_PATHS``
    bytes of paths. ``new_pack()`` gives the path of a new temp file for a pack,
    ``ship(pack)`` stores a sealed :class:`ReaderPack`; a reader's pack is sealed
    once it holds ``pack_size`` bytes."""

    what = "reader process"
    again = "archive again"

    def __init__(self, n: int, level: int, pack_size: int, new_pack, ship):
        super().__init__("jupyter_ext.archive.reader_process", n)
        self.level, self.pack_size = level, pack_size
        self.new_pack, self.ship = new_pack, ship
        self.filling: dict = {}  # process -> the ReaderPack it fills

    def submit(self, items: list, batch: list) -> None:
        """Queue ``batch`` (``(path, dev, ino, size)`` per file); ``items`` comes back
        with its answer."""
        super().submit((READ, self.level, batch), items)

    def next_answer(self):
        """``(process, items, answers)`` of the oldest request, answers as
        :func:`.reader_process.read_files` gives its items; or None when the oldest
        was a seal (its pack is shipped here)."""
        proc, tag = self.queue.popleft()
        answer = read_message(proc.stdout)
        if answer is None:
            self.stopped(proc)
        if isinstance(tag, ReaderPack):
            tag.sealed(*answer)
            self.ship(tag)
            return None
        if len(answer) != len(tag):
            self.stopped(proc)
        return proc, tag, answer

    def keep(self, proc, mask: bytes, kept: list) -> None:
        """Tell ``proc`` which blobs of its oldest answer to pack: ``mask`` has a byte
        per blob (1: keep); ``kept`` is ``(id hex, payload length, length)`` of each
        kept one, in order. A full pack is sealed."""
        pack, path = self.filling.get(proc), ""
        if kept and pack is None:
            pack = self.filling[proc] = ReaderPack(self.new_pack())
            path = pack.path
        self.send(proc, (KEEP, mask, path))
        for cid_hex, payload_len, n in kept:
            pack.add(cid_hex, payload_len, n)
        if kept and pack.size >= self.pack_size:
            self.seal(proc)

    def seal(self, proc) -> None:
        """Seal the pack ``proc`` fills, if any: shipped when its answer is read."""
        pack = self.filling.pop(proc, None)
        if pack is not None:
            self.send(proc, (SEAL,))
            self.queue.append((proc, pack))

    def seal_all(self) -> None:
        for proc in self.procs:
            self.seal(proc)

    def close(self, kill: bool = False) -> None:
        """Stop the processes; packs not shipped are removed."""
        super().close(kill)
        for pack in [*self.filling.values(),
                     *(tag for _, tag in self.queue if isinstance(tag, ReaderPack))]:
            pack.discard()
        self.filling.clear()
        self.queue.clear()


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
