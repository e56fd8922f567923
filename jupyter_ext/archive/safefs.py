"""Writing below a restore target without following links (dir fds + O_NOFOLLOW).

Every path is walked from an fd of the target, one component at a time, each
opened with ``O_NOFOLLOW``: a link anywhere on the way (from the archive or
already in the target) is refused instead of followed, so nothing is created,
chmodded or replaced outside the target.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict

from .errors import UnsafePath

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
SPECIAL_BITS = 0o7000  # setuid, setgid, sticky: never restored


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def safe_mode(mode: int, umask: int) -> int:
    """A manifest mode made safe to apply: no setuid/setgid/sticky, umask applied."""
    return mode & 0o777 & ~umask


class DirWalker:
    """Opens folders below ``root`` component by component, never through a link.

    Keeps a few recently used folder fds open (restores write file after file
    into the same folder). Use as a context manager; closes every fd it holds.
    """

    def __init__(self, root: str, keep: int = 32, on_create=None):
        self.root = root
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.keep = keep
        self.on_create = on_create
        self._fds: OrderedDict = OrderedDict()

    def __enter__(self) -> DirWalker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def open(self, parts: list | tuple, create: bool = False) -> int | None:
        """An fd of the folder ``parts`` below the root (owned by the walker: do
        not close it), or None when a component is missing and not ``create``."""
        key = tuple(parts)
        if not key:
            return self.root_fd
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        parent = self.open(key[:-1], create)
        if parent is None:
            return None
        name = key[-1]
        if create:
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
                if self.on_create:
                    self.on_create("/".join(key))
            except FileExistsError:
                pass
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise UnsafePath(f"{'/'.join(key)!r} in the restore target is a symlink or "
                                 "not a folder; refusing to write through it") from None
            raise
        self._fds[key] = fd
        while len(self._fds) > self.keep:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def lstat(self, parts: list | tuple):
        """lstat of ``parts`` below the root, None if missing (or its folder is)."""
        parent = self.open(parts[:-1])
        if parent is None:
            return None
        try:
            return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def readlink(self, parts: list | tuple) -> str:
        return os.readlink(parts[-1], dir_fd=self.open(parts[:-1]))
