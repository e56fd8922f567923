"""lens atom engine. No Jupyter imports here: the CLI, the service and the magics share it.

Entry points:
- ``parse_spec(data, catalog) -> JobSpec`` and ``load_catalog(path=None) -> AppCatalog``;
- ``estimate(spec, catalog, rate_for)``;
- ``JobManager(engine, backends, ledger, catalog=..., rate_for=...)`` with ``submit``,
  ``list``, ``get``, ``cancel``, ``logs``, ``refresh``, ``estimate``, ``apps``, ``start``,
  ``poll``;
- backends ``LocalBackend``, ``SlurmBackend``, ``BatchBackend`` (traitlets Configurables).
"""

from .catalog import AppCatalog, load_catalog
from .errors import AtomError, BackendError, JobNotFound, SpecError, UnknownUser
from .estimate import estimate
from .spec import JobSpec, parse_spec

__all__ = [
    "AppCatalog", "AtomError", "BackendError", "JobNotFound", "JobSpec", "SpecError",
    "UnknownUser", "estimate", "load_catalog", "parse_spec", "make_backend",
]


def make_backend(name: str, **kwargs):
    """Build a backend by name ("local", "slurm", "batch"); kwargs are its traits
    (including ``config=`` for a traitlets Config). Imports lazily (boto3 only for batch)."""
    if name == "local":
        from .backends.local import LocalBackend as cls
    elif name == "slurm":
        from .backends.slurm import SlurmBackend as cls
    elif name == "batch":
        from .backends.batch import BatchBackend as cls
    else:
        raise SpecError("backend", f"unknown backend {name!r}", "local, slurm, batch")
    return cls(**kwargs)
