"""Ledger tables (SQLAlchemy Core) and engine set-up.

SQLite is the default; a PostgreSQL URL works too. On SQLite every write
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, so a budget
check and the hold it guards cannot interleave); on PostgreSQL the budget rows
of the accounts involved are locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import os
import threading
from contextlib import nullcontext

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine

from .catalog import state_dir

metadata = MetaData()

budgets = Table(
    "lens_budgets", metadata,
    Column("account", String(160), primary_key=True),
    Column("amount_micro", BigInteger, nullable=False),
    Column("period", String(16), nullable=False),
    Column("start", DateTime),
    Column("end", DateTime),
    Column("thresholds", String(64), nullable=False),
    Column("override_until", DateTime),
    Column("override_by", String(160)),
    Column("override_reason", Text, nullable=False, default=""),
    Column("updated_at", DateTime, nullable=False),
)

holds = Table(
    "lens_holds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("category", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("amount_micro", BigInteger, nullable=False),
    Column("actual_micro", BigInteger),
    Column("status", String(16), nullable=False),  # open | charged | released
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime),
)

# The journal. Every row moves money of one account between its buckets:
# hold (available -> held), charge (held -> spent), refund/release (held ->
# available), record (available -> spent). Balances are sums over it.
entries = Table(
    "lens_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("account", String(160), nullable=False),
    Column("period_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("ref", String(255), nullable=False),
    Column("hold_id", Integer),
    Column("held_delta", BigInteger, nullable=False),
    Column("spent_delta", BigInteger, nullable=False),
    Index("ix_lens_entries_account_period", "account", "period_key"),
    Index("ix_lens_entries_at", "at"),
    Index("ix_lens_entries_hold", "hold_id"),
)

# Running balances per (account, period): a cache of the journal, updated in
# the same transaction as the entries (``Ledger.verify`` recomputes it).
balances = Table(
    "lens_balances", metadata,
    Column("account", String(160), primary_key=True),
    Column("period_key", String(64), primary_key=True),
    Column("held_micro", BigInteger, nullable=False),
    Column("spent_micro", BigInteger, nullable=False),
)

alerts = Table(
    "lens_alerts", metadata,
    Column("account", String(160), primary_key=True),
    Column("period_key", String(64), primary_key=True),
    Column("threshold", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
)

# Metered usage intervals (servers, Dask clusters, storage): persisted so that
# accrual survives hub restarts. One open row per ref at most.
intervals = Table(
    "lens_usage_intervals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(255), nullable=False),
    Column("category", String(16), nullable=False),
    Column("accounts", Text, nullable=False),  # JSON list
    Column("rate_usd_hour", String(40), nullable=False),  # exact decimal string
    Column("started_at", DateTime, nullable=False),
    Column("stopped_at", DateTime),
    Column("accrued_micro", BigInteger, nullable=False, default=0),
    Column("accrued_until", DateTime, nullable=False),
    Column("min_seconds", Integer, nullable=False, default=0),
    Column("step_seconds", Integer, nullable=False, default=0),  # accrue at most this often
    Column("snapshot", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),  # JSON
    Index("ix_lens_usage_ref", "ref"),
)


def default_db_url() -> str:
    url = os.environ.get("LENS_COSTS_DB_URL") or os.environ.get("LENS_DB_URL")
    if url:
        return url
    path = state_dir() / "lens-costs.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def configure_engine(engine: Engine) -> Engine:
    """Make SQLite transactions ``BEGIN IMMEDIATE`` with WAL and a busy timeout (idempotent)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_lens_configured", False):
        return engine

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout = 60000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        info = conn.connection.info
        if not info.get("lens_sqlite"):  # a connection pooled before we were configured
            dbapi_conn = conn.connection.dbapi_connection
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA busy_timeout = 60000")
            info["lens_sqlite"] = True
        # Writers take the write lock up front, so a budget check and the hold it guards
        # cannot interleave with another writer; connections marked read-only (the
        # ledger's queries) take a deferred snapshot that never blocks the writer.
        readonly = conn.get_execution_options().get("lens_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    engine._lens_configured = True
    engine._lens_write_lock = threading.Lock()
    return engine


def write_lock(engine: Engine):
    """In-process mutex taken before a SQLite write transaction.

    ``BEGIN IMMEDIATE`` alone is correct across processes, but threads that
    find the database busy wait in SQLite's sleeping busy handler, which is
    unfair and gives long tails; queueing them on a lock first keeps the
    latency flat. Other dialects need no lock (row locks do the work).
    """
    lock = getattr(engine, "_lens_write_lock", None)
    return lock if lock is not None else nullcontext()


def make_engine(url: str | None = None, **kwargs) -> Engine:
    url = url or default_db_url()
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 60, "check_same_thread": False})
    engine = create_engine(url, **kwargs)
    configure_engine(engine)
    metadata.create_all(engine)
    return engine
