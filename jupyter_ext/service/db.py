"""The lens service database (SQLite by default, a PostgreSQL URL accepted)."""

from __future__ import annotations

import sqlalchemy as sa


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, future=True, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets the hub (accounts) and the service share the file.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(url, future=True, pool_pre_ping=True)


metadata = sa.MetaData()

# Raw server start/stop events from the spawners, until they are metered.
server_events = sa.Table(
    "lens_server_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user", sa.String(64), nullable=False, index=True),
    sa.Column("server", sa.String(64), nullable=False, default=""),
    sa.Column("profile", sa.String(64), nullable=False),
    sa.Column("rate_usd_per_hour", sa.Float, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

# How far each metered source has been charged to the ledger (Dask: worker time
# before ``until_ms``, gateway clock). Moved in the same transaction as the ledger
# rows it covers, so a service restart neither loses nor repeats a window.
meter_watermarks = sa.Table(
    "lens_meter_watermarks",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("until_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
