"""The lens service database: the one lens database (see :mod:`jupyter_ext.db`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..db.engine import make_engine
from ..db.tables import idempotency_keys, metadata, meter_watermarks, server_events


def claim_key(engine: Engine, key: str, caller: str) -> bool:
    """Record ``key`` as applied; False when it already was (a replay)."""
    try:
        with engine.begin() as conn:
            conn.execute(idempotency_keys.insert().values(
                key=f"{caller}:{key}"[:300], caller=caller[:80], created=datetime.now(UTC).replace(tzinfo=None)))
    except sa.exc.IntegrityError:
        return False
    return True


def release_key(engine: Engine, key: str, caller: str) -> None:
    """Forget ``key`` (its call failed, so a retry must apply it)."""
    with engine.begin() as conn:
        conn.execute(idempotency_keys.delete().where(idempotency_keys.c.key == f"{caller}:{key}"[:300]))


def prune_keys(engine: Engine, older_than_days: int = 30) -> int:
    """Forget keys older than any outbox would still replay; returns how many."""
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=older_than_days)
    with engine.begin() as conn:
        return conn.execute(idempotency_keys.delete().where(idempotency_keys.c.created < cutoff)).rowcount


__all__ = ["claim_key", "idempotency_keys", "make_engine", "metadata", "meter_watermarks", "prune_keys",
           "release_key", "server_events"]
