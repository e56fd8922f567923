"""Reader processes for trees of many small files.

A small file costs the archiver Python time (open, read, hash, compress, book-
keeping), and threads only contend for the GIL over it. Reader processes take the
open/read/hash/compress part, a batch of files at a time, on every core; the
archiver keeps what must stay in one place (deduplication, packs, the file table).

A reader is ``python -m jupyter_ext.archive.readers``: requests and answers are
length-prefixed pickles on its stdin and stdout (private pipes between two
processes of the same user). A reader exits when its stdin closes, so one left
behind by a killed archiver goes with it.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import subprocess
import sys
from collections import deque

from .chunks import chunk_id, encode_parts
from .errors import ArchiveError
from .scan import Changed, Source, open_source

OK, GREW, FAILED = 0, 1, 2
BATCH_FILES = 128               # files per request
BATCH_BYTES = 2 * 1024 * 1024   # scanned bytes per request
BATCH_PATHS = 24 * 1024         # path bytes per request: a request always fits a pipe
IN_FLIGHT = 2                   # requests queued per reader
_HEAD = 8
_F_SETPIPE_SZ = 1031


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


def read_files(batch: list, level: int) -> list:
    """Per ``(path, dev, ino, size)``: ``(OK, None)`` for an empty file, ``(OK, (id,
    length, codec, payload))``, ``(GREW, None)`` when it grew past its scanned size
    (the archiver chunks it itself) or ``(FAILED, reason)`` (``read_one_chunk``)."""
    out = []
    for path, dev, ino, size in batch:
        status, data = read_one_chunk(Source(path, dev, ino), size)
        if status == OK and data:
            codec, payload = encode_parts(data, level)
            out.append((OK, (chunk_id(data), len(data), codec, bytes(payload))))
        else:
            out.append((status, None if status == OK else data))
    return out


def _send(stream, obj) -> None:
    body = pickle.dumps(obj, protocol=5)
    stream.write(len(body).to_bytes(_HEAD, "little"))
    stream.write(body)
    stream.flush()


def _receive(stream):
    head = stream.read(_HEAD)
    if len(head) < _HEAD:
        return None
    n = int.from_bytes(head, "little")
    body = stream.read(n)
    if len(body) < n:
        return None
    return pickle.loads(body)


def main() -> None:
    """The reader's loop: one answer per request, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (request := _receive(stdin)) is not None:
        level, batch = request
        _send(stdout, read_files(batch, level))


class ReaderPool:
    """``n`` reader processes fed round-robin; answers come back in request order.

    Each reader has at most ``IN_FLIGHT`` requests queued and each request is
    under ``BATCH_PATHS`` bytes of paths, so a write to a reader never blocks on a
    reader that is itself waiting for its answer to be read (no deadlock)."""

    def __init__(self, n: int, level: int):
        self.level = level
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        self.procs = []
        try:
            for _ in range(n):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "jupyter_ext.archive.readers"], env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
                for pipe in (proc.stdin, proc.stdout):
                    try:  # larger pipes: fewer wake-ups per answer
                        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1024 * 1024)
                    except OSError:
                        pass
                self.procs.append(proc)
        except BaseException:
            self.close(kill=True)
            raise
        self.queue: deque = deque()  # (reader, request) in request order
        self._next = 0

    def full(self) -> bool:
        return len(self.queue) >= IN_FLIGHT * len(self.procs)

    def submit(self, items: list, batch: list) -> None:
        """Queue ``batch`` (``(path, dev, ino, size)`` per file); ``items`` comes back
        with its answer."""
        proc = self.procs[self._next]
        self._next = (self._next + 1) % len(self.procs)
        try:
            _send(proc.stdin, (self.level, batch))
        except OSError as exc:
            raise ArchiveError(f"a reader process stopped ({exc}); archive again") from None
        self.queue.append((proc, items))

    def next_answer(self) -> tuple[list, list]:
        """(items, answers) of the oldest request."""
        proc, items = self.queue.popleft()
        answers = _receive(proc.stdout)
        if answers is None or len(answers) != len(items):
            code = proc.poll()
            raise ArchiveError(f"a reader process stopped (exit code {code}); archive again")
        return items, answers

    def close(self, kill: bool = False) -> None:
        for proc in self.procs:
            try:
                if kill:
                    proc.kill()
                proc.stdin.close()
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.procs = []


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


if __name__ == "__main__":
    main()
