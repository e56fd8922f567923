"""Exceptions raised by the archive engine. Adapters turn them into user-facing errors."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class: a user-facing failure of the archive engine."""


class ConfigError(ArchiveError, ValueError):
    """A bad setting or argument; the message names the field and the allowed values."""


class NotFound(ArchiveError, KeyError):
    """An archive, object or restore that does not exist (or is not visible to this owner)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "not found"


class AccessDenied(ArchiveError, PermissionError):
    """A principal tried to use a repository that belongs to another owner."""


class IntegrityError(ArchiveError):
    """Stored data does not match its hash, or the repository is inconsistent."""


class UnsafePath(ArchiveError):
    """A manifest path or symlink would escape the restore target."""


class ObjectArchived(ArchiveError):
    """An object sits in a cold storage class and must be thawed before reading."""


class Exists(ArchiveError, FileExistsError):
    """A restore would overwrite an existing file without overwrite=True."""


class Cancelled(ArchiveError):
    """The operation was cancelled through its cancel event."""


class StoreError(ArchiveError):
    """The object store refused or failed a request (after retries)."""


class TooLarge(IntegrityError):
    """A stored metadata object decompresses beyond its size bound (corrupt or hostile)."""
