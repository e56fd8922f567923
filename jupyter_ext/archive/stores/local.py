"""A repository in a local directory: atomic writes (temp file + fsync + rename)."""

from __future__ import annotations

import os
import secrets

from ..errors import ConfigError, NotFound
from ..mapping import map_range
from .base import ObjectInfo, Store

TMP_MARK = ".lens-tmp-"


class LocalStore(Store):
    """Keys are relative paths below ``root``. Storage classes do not apply locally."""

    spools = True

    def __init__(self, root: str, fsync: bool = True):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = self.root
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ConfigError(f"key: {key!r} is not a clean relative key")
        return os.path.join(self.root, *parts)

    def put(self, key, data, *, storage_class=None, tags=None):
        path = self._path(key)
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f"{TMP_MARK}{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)

    def spool(self, prefix):
        """Packs are built in a temp file of the repository and renamed into place
        (no pack in memory, no second write); a kill leaves a temp file, which
        ``check`` reports."""
        directory = self._path(prefix.rstrip("/"))
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{TMP_MARK}{secrets.token_hex(6)}")
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path

    def put_file(self, key, path, *, storage_class=None, tags=None):
        dest = self._path(key)
        if self.fsync:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(path, dest)

    def get(self, key, start=None, length=None):
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                if start:
                    f.seek(start)
                return f.read() if length is None else f.read(length)
        except FileNotFoundError:
            raise NotFound(f"object {key!r} not found") from None

    def view(self, key, start, length):
        """The range mapped from the page cache (``mapping.map_range``)."""
        try:
            return map_range(self._path(key), start, length)
        except FileNotFoundError:
            raise NotFound(f"object {key!r} not found") from None

    def path_of(self, key: str) -> str:
        """The file that holds ``key`` (a restore's writer processes map packs)."""
        return self._path(key)

    def open(self, key):
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"object {key!r} not found") from None

    def list(self, prefix):
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not os.path.isdir(base):
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(TMP_MARK):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                try:
                    size = os.stat(full).st_size
                except FileNotFoundError:
                    continue
                yield ObjectInfo(rel, size, "LOCAL")

    def temp_files(self, prefix=""):
        """Leftovers of interrupted writes (harmless; removed by ``cleanup``)."""
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                if name.startswith(TMP_MARK):
                    yield os.path.join(dirpath, name)

    def head(self, key):
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            raise NotFound(f"object {key!r} not found") from None
        return ObjectInfo(key, st.st_size, "LOCAL")

    def delete(self, key):
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
