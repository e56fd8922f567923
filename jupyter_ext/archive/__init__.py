"""lens archive engine. No Jupyter imports here: the CLI, the service and the magics share it.

Entry point: :class:`jupyter_ext.archive.engine.ArchiveEngine`; access is scoped by
:class:`Principal` and owner strings ``user:NAME`` / ``group:NAME``.
"""

from .engine import ArchiveEngine, parse_pairs
from .errors import (
    AccessDenied,
    ArchiveError,
    Cancelled,
    ConfigError,
    Exists,
    IntegrityError,
    NotFound,
    ObjectArchived,
    StoreError,
    UnsafePath,
)
from .progress import Progress
from .repository import Owner, Principal

__all__ = ["ArchiveEngine", "parse_pairs", "Principal", "Owner", "Progress", "ArchiveError",
           "AccessDenied", "Cancelled", "ConfigError", "Exists", "IntegrityError", "NotFound",
           "ObjectArchived", "StoreError", "UnsafePath"]
