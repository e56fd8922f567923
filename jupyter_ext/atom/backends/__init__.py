"""Job backends with one interface: submit, batched status, cancel, logs, list."""

from .base import Backend, BackendStatus, JobRef, Submission

__all__ = ["Backend", "BackendStatus", "JobRef", "Submission"]
