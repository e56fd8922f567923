"""Job backends with one interface: submit, batched status, cancel, logs, list."""

from .base import Backend, BackendStatus, JobRef, Submission

__all__ = ["Backend", "BackendStatus", "JobRef", "Submission", "make_backend"]


def make_backend(name: str, **kwargs) -> Backend:
    """Build a backend by name ("local", "slurm", "batch"); kwargs are its traits
    (including ``config=`` for a traitlets Config). Imports lazily (boto3 only for batch)."""
    from ..errors import SpecError

    if name == "local":
        from .local import LocalBackend as cls
    elif name == "slurm":
        from .slurm import SlurmBackend as cls
    elif name == "batch":
        from .batch import BatchBackend as cls
    else:
        raise SpecError("backend", f"unknown backend {name!r}", "local, slurm, batch")
    return cls(**kwargs)
