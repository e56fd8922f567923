"""The lens database: one schema, one engine factory, one default URL, migrations.

- :mod:`.tables`: every lens table, on the one ``metadata``;
- :mod:`.engine`: ``make_engine`` (SQLite pragmas, ``BEGIN IMMEDIATE`` writes)
  and ``default_url`` (``$LENS_DB_URL`` or ``<state dir>/lens.sqlite``);
- :mod:`.migrate`: Alembic revisions (``alembic/versions``), ``ensure_schema``
  (what every store and the service call) and ``upgrade`` (``lens db upgrade``).

Imports nothing from Jupyter, so every engine and process may use it.
"""

from .engine import configure_engine, default_url, make_engine, sqlite_file, write_lock
from .migrate import (
    POLICIES,
    SchemaError,
    Status,
    drop_schema,
    ensure_schema,
    head_revision,
    schema_status,
    upgrade,
)
from .tables import metadata

__all__ = [
    "POLICIES", "SchemaError", "Status", "configure_engine", "default_url", "drop_schema",
    "ensure_schema", "head_revision", "make_engine", "metadata", "schema_status", "sqlite_file",
    "upgrade", "write_lock",
]
