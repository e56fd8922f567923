"""What a restore's writer process runs:
``python -m jupyter_ext.archive.writer_process TARGET``.

A restore of many small files spends its time in four system calls a file
(create, write, set the mtime, close). Threads of one process hand the GIL
around at every one of them; two writer processes do not (:mod:`.restore` feeds
them batches of new files from a local repository's packs).

Writers run at a lower priority (``NICE``) than the restore, whose big files are
written meanwhile. A writer maps the batch's pack range itself (the modules it
imports are few: its memory counts), decodes and verifies each chunk (BLAKE3),
and creates each file under its final name with ``O_EXCL``, in a folder opened
from the target one component at a time without following links
(:class:`.safefs.DirWalker`). It never creates folders, never replaces a file
and never follows a link: a name that is taken, or a folder that is missing, is
handed back to the restore (``RETRY``), which writes that file itself.

Over an existing tree (``--overwrite``), a file that was there when the restore
began comes with ``keep``: the writer opens it (no link followed) and, if it is a
regular file of this user with one link holding exactly this content (each
chunk's BLAKE3), sets its mode and mtime and answers ``OK``; anything else goes
back (``RETRY``) for the restore to replace. Checking the unchanged files of a
copy is most of such a restore, and threads handed the GIL around at every file.

On stdin and stdout, :mod:`.framing`'s messages:
- a request: ``(pack file, start, length, files)``, each file ``(relative path,
  size, mode, mtime_ns, chunks, keep)``, each chunk ``(id, offset in the range,
  length, raw length)``;
- its answer: per file, ``OK``, ``RETRY``, or ``(FAILED, kind, errno, message)``
  with kind ``"corrupt"``, ``"unsafe"``, ``"missing"`` (the pack) or ``"os"``.
"""

from __future__ import annotations

import os
import stat
import sys

from .blobs import chunk_id, decode
from .errors import IntegrityError, UnsafePath
from .framing import frame, read_message, write_all
from .mapping import map_range
from .safefs import DirWalker
from .sources import READ_FLAGS

OK, RETRY, FAILED = 0, 1, 2
PREALLOCATE = 1024 * 1024   # files from this size are preallocated (fewer extents)
# Writers yield the CPU to the restore's big files, which run meanwhile: alone, the
# big files keep about one core busy and the writers both, so the big files go
# first and the writers take what is left (2 GB + 100,000 small files on 2 cores:
# 10.8-11.1 s at equal priority, 8.7-9.9 s so)
NICE = 10
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_content(fd: int, size: int, datas) -> None:
    """Write ``datas`` (decoded chunks, in order) to a new file of ``size`` bytes,
    preallocated from ``PREALLOCATE`` (fewer extents)."""
    if size >= PREALLOCATE:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            pass  # a file system without fallocate: plain writes
    for data in datas:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]


def write_new_file(pfd: int, name: str, mode: int, mtime_ns: int, size: int,
                   datas) -> bool:
    """Create ``name`` in the folder ``pfd`` with ``datas`` (decoded chunks, in
    order) and its mtime; False when the name is taken (nothing written). A file
    that fails half-way is removed: no partial file is left under its name."""
    try:
        fd = os.open(name, CREATE_FLAGS, mode, dir_fd=pfd)
    except FileExistsError:
        return False
    try:
        write_content(fd, size, datas)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    except BaseException:
        os.close(fd)
        os.unlink(name, dir_fd=pfd)
        raise
    os.close(fd)
    return True


def kept(pfd: int, name: str, mode: int, mtime_ns: int, size: int, chunks) -> bool:
    """Whether ``name`` in the folder ``pfd`` already holds this content (``chunks``:
    ``(id, _, _, raw length)`` each): then its mode and mtime are set. Only a regular file of this user with one link counts
    (a hard link may share its inode with a file outside the target: that one is
    replaced by the restore, never chmodded here)."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=pfd)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_size != size or st.st_nlink != 1
                or st.st_uid != os.geteuid()):
            return False
        for cid, _off, _length, raw in chunks:
            data = os.read(fd, raw)  # small files: one read a chunk
            while 0 < len(data) < raw:
                more = os.read(fd, raw - len(data))
                if not more:
                    break
                data += more
            if len(data) != raw or chunk_id(data) != cid:
                return False
        os.fchmod(fd, mode)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        return True
    finally:
        os.close(fd)


class PackRange:
    """A batch's range of its pack, mapped when a file first needs it (a batch of
    unchanged files over a copy needs none)."""

    def __init__(self, path: str, start: int, length: int):
        self.path, self.start, self.length = path, start, length
        self.view = None

    def get(self) -> memoryview:
        """The mapped range; FileNotFoundError when the pack is missing."""
        if self.view is None:
            self.view = map_range(self.path, self.start, self.length)
        return self.view


def write_batch(walker: DirWalker, pack: PackRange, files: list) -> list:
    """Write the files of one batch from their pack range; the answers."""
    answers = []
    for rel, size, mode, mtime_ns, chunks, keep in files:
        try:
            if keep:  # there when the restore began: kept if unchanged, else handed back
                parts = rel.split("/")
                pfd = walker.open(parts[:-1])
                answers.append(OK if pfd is not None and kept(pfd, parts[-1], mode, mtime_ns,
                                                              size, chunks) else RETRY)
                continue
            try:
                blob = pack.get()
            except FileNotFoundError as exc:
                answers.append((FAILED, "missing", 0, str(exc)))
                continue
            decoded: dict = {}  # a chunk repeated in the file decodes once
            datas = []
            for cid, off, length, raw in chunks:
                data = decoded.get(cid)
                if data is None:
                    data = decoded[cid] = decode(blob[off:off + length], cid, raw)
                datas.append(data)
            parts = rel.split("/")
            pfd = walker.open(parts[:-1])
            done = pfd is not None and write_new_file(pfd, parts[-1], mode, mtime_ns, size,
                                                      datas)
            answers.append(OK if done else RETRY)
        except IntegrityError as exc:
            answers.append((FAILED, "corrupt", 0, str(exc)))
        except UnsafePath as exc:
            answers.append((FAILED, "unsafe", 0, str(exc)))
        except OSError as exc:
            answers.append((FAILED, "os", exc.errno or 0, exc.strerror or str(exc)))
    return answers


def main() -> None:
    """One answer per request, until stdin closes."""
    target = sys.argv[1]
    os.nice(NICE)
    stdin, out = sys.stdin.buffer, sys.stdout.fileno()
    with DirWalker(target) as walker:
        while (request := read_message(stdin)) is not None:
            path, start, length, files = request
            pack = PackRange(path, start, length)
            answers = write_batch(walker, pack, files)
            del pack  # the range is unmapped before the next one
            write_all(out, [frame(answers)])


if __name__ == "__main__":
    main()
