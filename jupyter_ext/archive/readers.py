"""Reader processes for trees of many small files.

A small file costs the archiver Python time (open, read, hash, compress, book-
keeping), and threads only contend for the GIL over it. Reader processes take the
open/read/hash/compress part, a batch of files at a time, on every core; the
archiver keeps what must stay in one place (deduplication, packs, the file table).

This module is the archiver's side: :class:`ReaderPool` starts the processes
and feeds them. What each one runs, and the framing, is :mod:`.reader_process`.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import subprocess
import sys
from collections import deque

from .errors import ArchiveError
from .reader_process import FAILED, GREW, OK, frame, read_message

__all__ = ["FAILED", "GREW", "OK", "ReaderPool", "batches"]

BATCH_FILES = 128               # files per request
BATCH_BYTES = 1024 * 1024       # scanned bytes per request (a reader holds about twice)
BATCH_PATHS = 24 * 1024         # path bytes per request: a request always fits a pipe
IN_FLIGHT = 2                   # requests queued per reader
_F_SETPIPE_SZ = 1031


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
                    [sys.executable, "-m", "jupyter_ext.archive.reader_process"], env=env,
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
            proc.stdin.write(frame(marshal.dumps((self.level, batch))))
            proc.stdin.flush()
        except OSError as exc:
            raise ArchiveError(f"a reader process stopped ({exc}); archive again") from None
        self.queue.append((proc, items))

    def next_answer(self) -> tuple[list, list]:
        """(items, answers) of the oldest request: per file, ``(status, value)`` as
        :func:`.reader_process.read_files` gives it, with a payload's length
        replaced by the payload."""
        proc, items = self.queue.popleft()
        stream, answers = proc.stdout, []
        for _ in items:
            answer = read_message(stream)
            if answer is None:
                self._stopped(proc)
            status, value = answer
            if status == OK and value is not None:
                cid, n, codec, size = value
                payload = stream.read(size)
                if len(payload) != size:
                    self._stopped(proc)
                answer = (OK, (cid, n, codec, payload))
            answers.append(answer)
        return items, answers

    @staticmethod
    def _stopped(proc):
        raise ArchiveError(f"a reader process stopped (exit code {proc.poll()}); archive again")

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
