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

# Idempotency keys of calls already applied (``Idempotency-Key`` header, e.g. metering
# events replayed from a durable outbox): a key seen again is answered, not applied again.
idempotency_keys = sa.Table(
    "lens_idempotency_keys",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("caller", sa.String(80), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
)


def claim_key(engine: sa.Engine, key: str, caller: str) -> bool:
    """Record ``key`` as applied; False when it already was (a replay)."""
    from datetime import UTC, datetime

    try:
        with engine.begin() as conn:
            conn.execute(idempotency_keys.insert().values(
                key=f"{caller}:{key}"[:300], caller=caller[:80], created=datetime.now(UTC).replace(tzinfo=None)))
    except sa.exc.IntegrityError:
        return False
    return True


def release_key(engine: sa.Engine, key: str, caller: str) -> None:
    """Forget ``key`` (its call failed, so a retry must apply it)."""
    with engine.begin() as conn:
        conn.execute(idempotency_keys.delete().where(idempotency_keys.c.key == f"{caller}:{key}"[:300]))


def prune_keys(engine: sa.Engine, older_than_days: int = 30) -> int:
    """Forget keys older than any outbox would still replay; returns how many."""
    from datetime import UTC, datetime, timedelta

    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=older_than_days)
    with engine.begin() as conn:
        return conn.execute(idempotency_keys.delete().where(idempotency_keys.c.created < cutoff)).rowcount
