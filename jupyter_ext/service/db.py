"""The lens service database: the one lens database (see :mod:`jupyter_ext.db`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..db.engine import make_engine
from ..db.tables import idempotency_keys, metadata, meter_watermarks, server_events


def claim_key(engine: Engine, key: str, caller: str) -> str:
    """Claim ``key`` for a call about to be applied: "new" (apply it, then ``finish_key``),
    "done" (a replay of an applied call) or "pending" (the first call is still being
    applied: the replay must come back later)."""
    try:
        with engine.begin() as conn:
            conn.execute(idempotency_keys.insert().values(
                key=f"{caller}:{key}"[:300], caller=caller[:80], done=False,
                created=datetime.now(UTC).replace(tzinfo=None)))
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            done = conn.execute(sa.select(idempotency_keys.c.done).where(
                idempotency_keys.c.key == f"{caller}:{key}"[:300])).scalar()
        return "done" if done else "pending"
    return "new"


def finish_key(engine: Engine, key: str, caller: str) -> None:
    """The call with ``key`` was applied: replays are answered, not applied."""
    with engine.begin() as conn:
        conn.execute(idempotency_keys.update().where(
            idempotency_keys.c.key == f"{caller}:{key}"[:300]).values(done=True))


def release_key(engine: Engine, key: str, caller: str) -> None:
    """Forget ``key`` (its call failed, so a retry must apply it)."""
    with engine.begin() as conn:
        conn.execute(idempotency_keys.delete().where(idempotency_keys.c.key == f"{caller}:{key}"[:300]))


def prune_keys(engine: Engine, older_than_days: int = 30) -> int:
    """Forget keys older than any outbox would still replay; returns how many."""
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=older_than_days)
    with engine.begin() as conn:
        return conn.execute(idempotency_keys.delete().where(idempotency_keys.c.created < cutoff)).rowcount


__all__ = ["claim_key", "finish_key", "idempotency_keys", "make_engine", "metadata", "meter_watermarks", "prune_keys",
           "release_key", "server_events"]
