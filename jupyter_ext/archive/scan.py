"""Walk the source paths into manifest entries (directories, files, symlinks).

The walk never follows a link: folders are opened with ``O_NOFOLLOW`` relative
to their parent's fd and checked against their ``lstat``, so a folder swapped
for a symlink during the scan is skipped, not descended. Each file's identity
(st_dev, st_ino) is kept with its path (:class:`Source`): the archiver opens it
again with ``O_NOFOLLOW|O_NONBLOCK`` and reads it only if ``fstat`` shows the
same regular file (``open_source``). That matters when root archives homes.
"""

from __future__ import annotations

import os
import stat

from .errors import ConfigError, UnsafePath
from .manifest import DIR, FILE, SYMLINK, FileEntry, check_link
from .sources import Source

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def scan(sources: list[str], out=None) -> tuple[list[tuple[FileEntry, Source]], list[str]]:
    """Return ``[(entry, Source)]`` in a stable order, and skipped paths. ``out``:
    anything with ``append`` to receive the items instead of a new list (the
    archiver's on-disk FileTable).

    Each source becomes a top-level name in the archive (its basename), like tar.
    Symlinks are stored as links, never followed; links that point outside their
    source tree are skipped (a restore would refuse them).
    """
    out = [] if out is None else out
    skipped: list[str] = []
    walk_sources(check_sources(sources), out, skipped)
    return out, skipped


def check_sources(sources: list[str]) -> list[tuple[str, str]]:
    """``(absolute path, top-level name)`` of each source; ConfigError, before any
    is walked, when one does not exist or two share a name."""
    out, tops = [], set()
    for src in sources:
        full = os.path.abspath(os.path.expanduser(src))
        if not os.path.lexists(full):
            raise ConfigError(f"paths: {src!r} does not exist")
        top = os.path.basename(full.rstrip("/")) or "root"
        if top in tops:
            raise ConfigError(f"paths: two sources are both named {top!r}")
        tops.add(top)
        out.append((full, top))
    return out


def walk_sources(checked: list[tuple[str, str]], out, skipped: list) -> None:
    """Walk ``check_sources``'s sources into ``out`` (``append``), in order."""
    for full, top in checked:
        _walk(full, top, out, skipped, None)


def is_utf8(text: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (Python hands other bytes
    over as lone surrogates, which the manifest's UTF-8 cannot hold)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """A name with its non-UTF-8 bytes as ``\\xNN`` escapes, for messages."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _entry(rel: str, st: os.stat_result, readlink) -> FileEntry | None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return FileEntry(rel, DIR, mode, st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        return FileEntry(rel, FILE, mode, st.st_mtime_ns, st.st_size,
                         ctime_ns=st.st_ctime_ns, ino=st.st_ino)
    if stat.S_ISLNK(st.st_mode):
        target = readlink()
        check_link(rel, target)
        return FileEntry(rel, SYMLINK, mode, st.st_mtime_ns, target=target)
    return None


def _walk(full: str, rel: str, out: list, skipped: list, parent_fd: int | None,
          st: os.stat_result | None = None) -> None:
    """``full`` is the path (for reading later); ``parent_fd`` the folder fd it is
    looked up in (None for a top-level source, looked up by path); ``st`` its
    ``lstat`` when the caller has it."""
    name = os.path.basename(full) if parent_fd is not None else full
    at = {"dir_fd": parent_fd} if parent_fd is not None else {}
    if not is_utf8(rel):
        skipped.append(f"{printable(rel)}: the name is not UTF-8 (rename it to archive it); "
                       "skipped")
        return
    try:
        if st is None:
            st = os.stat(name, follow_symlinks=False, **at)
        entry = _entry(rel, st, lambda: os.readlink(name, **at))
    except (UnsafePath, OSError):
        skipped.append(rel)
        return
    if entry is not None and not is_utf8(entry.target):
        skipped.append(f"{rel}: the link's target is not UTF-8; skipped")
        return
    if entry is None:
        skipped.append(rel)
        return
    if entry.type != DIR:
        out.append((entry, Source(full, st.st_dev, st.st_ino)))
        return
    try:
        fd = os.open(name, DIR_FLAGS, **at)
    except OSError:
        skipped.append(rel)  # unreadable, or swapped for a link since the lstat
        return
    try:
        dst = os.fstat(fd)
        if (dst.st_dev, dst.st_ino) != (st.st_dev, st.st_ino):
            skipped.append(f"{rel}: replaced during the scan; skipped")
            return
        out.append((entry, Source(full, st.st_dev, st.st_ino)))
        try:
            names = sorted(os.listdir(fd))
        except OSError:
            skipped.append(rel)
            return
        _children(fd, full if full.endswith("/") else full + "/", rel + "/", names, out,
                  skipped)
    finally:
        os.close(fd)


def _children(fd: int, full: str, rel: str, names: list, out: list, skipped: list) -> None:
    """A folder's entries (``full`` and ``rel`` end with ``/``). Regular files, most
    of a tree, are taken here (one ``lstat`` each); the rest through ``_walk``."""
    for child in names:
        try:
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
        except OSError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode) or not is_utf8(child):
            _walk(full + child, rel + child, out, skipped, fd, st)  # reports, or descends
            continue
        out.append((FileEntry(rel + child, FILE, stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                              st.st_size, ctime_ns=st.st_ctime_ns, ino=st.st_ino),
                    Source(full + child, st.st_dev, st.st_ino)))
