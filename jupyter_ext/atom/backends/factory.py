"""Build a job backend by name, importing only that backend (boto3 only for batch)."""

from __future__ import annotations

from ..errors import SpecError
from .base import Backend


def make_backend(name: str, **kwargs) -> Backend:
    """Build a backend by name ("local", "slurm", "batch"); kwargs are its traits
    (including ``config=`` for a traitlets Config). Imports lazily (boto3 only for batch)."""
    if name == "local":
        from .local import LocalBackend as cls
    elif name == "slurm":
        from .slurm import SlurmBackend as cls
    elif name == "batch":
        from .batch import BatchBackend as cls
    else:
        raise SpecError("backend", f"unknown backend {name!r}", "local, slurm, batch")
    return cls(**kwargs)
