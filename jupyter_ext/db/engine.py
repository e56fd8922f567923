"""The one engine factory and the one default URL of the lens database.

SQLite is the default (``<state dir>/lens.sqlite``); ``$LENS_DB_URL`` (or an
explicit URL) may name PostgreSQL instead. On SQLite every connection gets WAL,
a busy timeout and foreign keys. Transactions begin deferred (``BEGIN``: a
reader never blocks the writer), except on connections with the execution
option ``lens_immediate`` (the ledger's writes, schema upgrades), which begin
with ``BEGIN IMMEDIATE``: one writer at a time, so a budget check and the hold
it guards cannot interleave. On PostgreSQL the ledger locks budget
rows with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextlib import nullcontext

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..paths import state_dir

DB_FILE = "lens.sqlite"
BUSY_TIMEOUT_MS = 60000


def default_url(environ: Mapping[str, str] | None = None) -> str:
    """``$LENS_DB_URL``, else SQLite at ``<state dir>/lens.sqlite`` (every lens process agrees)."""
    environ = os.environ if environ is None else environ
    return environ.get("LENS_DB_URL") or f"sqlite:///{state_dir(environ) / DB_FILE}"


def sqlite_file(url: str | sa.URL) -> str | None:
    """The file of a SQLite URL, or None (another dialect, or in memory)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def configure_engine(engine: Engine) -> Engine:
    """SQLite: WAL, busy timeout, foreign keys, ``BEGIN IMMEDIATE`` for ``lens_immediate`` (idempotent)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_lens_configured", False):
        return engine

    def _pragmas(dbapi_conn) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, record):
        _pragmas(dbapi_conn)
        if engine.url.database not in (None, "", ":memory:"):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode = WAL")  # the hub (accounts) and the service share the file
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()
        record.info["lens_sqlite"] = True

    @event.listens_for(engine, "begin")
    def _begin(conn):
        info = conn.connection.info
        if not info.get("lens_sqlite"):  # a connection pooled before we were configured
            _pragmas(conn.connection.dbapi_connection)
            info["lens_sqlite"] = True
        # The ledger's writers take the write lock up front, so a budget check and the
        # hold it guards cannot interleave with another writer; everything else takes a
        # deferred snapshot that never blocks the writer.
        immediate = conn.get_execution_options().get("lens_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

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
    """The engine of the lens database (``url`` or :func:`default_url`).

    It does not create or check tables: :func:`jupyter_ext.db.migrate.ensure_schema`
    does (the stores call it).
    """
    url = url or default_url()
    path = sqlite_file(url)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    return configure_engine(sa.create_engine(url, **kwargs))
