"""The object-store interface the repository needs. Implementations are thread-safe."""

from __future__ import annotations

from dataclasses import dataclass

from ...constants import COLD_CLASSES


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    storage_class: str = "STANDARD"
    # None: no restore requested; "ongoing": thaw in progress; "done": readable copy exists.
    restore: str | None = None

    @property
    def readable(self) -> bool:
        return self.storage_class not in COLD_CLASSES or self.restore == "done"


class Store:
    """Flat keys (``a/b/c``) to immutable byte objects."""

    url = ""
    spools = False  # True: ``spool``/``put_file`` build objects in local temp files

    def put(self, key: str, data: bytes, *, storage_class: str | None = None,
            tags: dict | None = None) -> None:
        raise NotImplementedError

    def spool(self, prefix: str) -> tuple[int, str]:
        """A new temp file (fd, path) to build an object in on local disk (stores
        with ``spools``; the others build objects in memory for ``put``). Built
        objects go in with ``put_file``."""
        raise NotImplementedError

    def put_file(self, key: str, path: str, *, storage_class: str | None = None,
                 tags: dict | None = None) -> None:
        """Store the file at ``path`` (from ``spool``) under ``key``; consumes it."""
        raise NotImplementedError

    def get(self, key: str, start: int | None = None, length: int | None = None) -> bytes:
        """Return the object (or ``length`` bytes from ``start``).

        Raises NotFound, or ObjectArchived when a cold object is not thawed.
        """
        raise NotImplementedError

    def view(self, key: str, start: int, length: int) -> memoryview:
        """``length`` bytes of the object from ``start`` (fewer at its end), read
        only; a restore's ranged reads of packs."""
        return memoryview(self.get(key, start, length))

    def open(self, key: str):
        """A binary file object reading the whole object (close it): stores on
        local disk read it as it is consumed; the others hold it in memory."""
        import io

        return io.BytesIO(self.get(key))

    def list(self, prefix: str):
        """Yield ObjectInfo for every key under ``prefix``."""
        raise NotImplementedError

    def head(self, key: str) -> ObjectInfo:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        from ..errors import NotFound

        try:
            self.head(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def request_restore(self, key: str, tier: str, days: int) -> None:
        """Ask for a thawed copy of a cold object (no-op where nothing is cold)."""

    def put_lifecycle(self, rules: list[dict]) -> dict:
        from ..errors import ConfigError

        raise ConfigError("lifecycle: only S3 repositories have lifecycle rules")

    def get_lifecycle(self) -> list[dict]:
        return []
