"""The ledger's tables and engine: names kept for the ledger's users.

The tables are declared in :mod:`jupyter_ext.db.tables` (the one schema of the
lens database) and the engine comes from :func:`jupyter_ext.db.engine.make_engine`:
SQLite by default, a PostgreSQL URL works too. On SQLite every write
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, so a budget
check and the hold it guards cannot interleave); on PostgreSQL the budget rows
of the accounts involved are locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from ..db.engine import configure_engine, default_url, make_engine, write_lock
from ..db.tables import alerts, balances, budgets, entries, holds, intervals, metadata

default_db_url = default_url

__all__ = [
    "alerts", "balances", "budgets", "configure_engine", "default_db_url", "entries", "holds",
    "intervals", "make_engine", "metadata", "write_lock",
]
