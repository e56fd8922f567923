"""Walk the source paths into manifest entries (directories, files, symlinks)."""

from __future__ import annotations

import os
import stat

from .errors import ConfigError, UnsafePath
from .manifest import DIR, FILE, SYMLINK, FileEntry, check_link


def scan(sources: list[str]) -> tuple[list[tuple[FileEntry, str]], list[str]]:
    """Return ``[(entry, absolute source path)]`` in a stable order, and skipped paths.

    Each source becomes a top-level name in the archive (its basename), like tar.
    Symlinks are stored as links, never followed; links that point outside their
    source tree are skipped (a restore would refuse them).
    """
    out: list[tuple[FileEntry, str]] = []
    skipped: list[str] = []
    tops = set()
    for src in sources:
        full = os.path.abspath(os.path.expanduser(src))
        if not os.path.lexists(full):
            raise ConfigError(f"paths: {src!r} does not exist")
        top = os.path.basename(full.rstrip("/")) or "root"
        if top in tops:
            raise ConfigError(f"paths: two sources are both named {top!r}")
        tops.add(top)
        _walk(full, top, out, skipped)
    return out, skipped


def _entry(full: str, rel: str, st: os.stat_result) -> FileEntry | None:
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        return FileEntry(rel, DIR, mode, st.st_mtime_ns)
    if stat.S_ISREG(st.st_mode):
        return FileEntry(rel, FILE, mode, st.st_mtime_ns, st.st_size)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(full)
        check_link(rel, target)
        return FileEntry(rel, SYMLINK, mode, st.st_mtime_ns, target=target)
    return None


def _walk(full: str, rel: str, out: list, skipped: list) -> None:
    try:
        st = os.lstat(full)
        entry = _entry(full, rel, st)
    except UnsafePath:
        skipped.append(rel)
        return
    except OSError:
        skipped.append(rel)
        return
    if entry is None:
        skipped.append(rel)
        return
    out.append((entry, full))
    if entry.type == DIR:
        try:
            names = sorted(os.listdir(full))
        except OSError:
            skipped.append(rel)
            return
        for name in names:
            _walk(os.path.join(full, name), f"{rel}/{name}", out, skipped)
