"""Errors of the atom engine. Each carries a user-facing message."""

from __future__ import annotations


class AtomError(Exception):
    """Base class: a user-facing failure of the atom engine."""


class SpecError(AtomError, ValueError):
    """An invalid job spec or catalog entry; names the field and the allowed values."""

    def __init__(self, field: str, message: str, allowed: str | None = None):
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed:
            text += f" (allowed: {allowed})"
        super().__init__(text)


class JobNotFound(AtomError, KeyError):
    """No such job for this user (another user's job is reported the same way: 404)."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"no such job: {job_id}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class BackendError(AtomError):
    """The scheduler or cloud refused or failed an operation."""


class UnknownUser(BackendError):
    """The hub user has no unix account to run jobs as."""
