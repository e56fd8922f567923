"""Persistence of the job state machine (SQLAlchemy Core; SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from ..db.migrate import ensure_schema
from ..db.tables import jobs


class JobStore:
    """Job records as JSON documents with indexed user/state columns."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        ensure_schema(engine)

    def put(self, rec: dict[str, Any]) -> None:
        rec["updated"] = time.time()
        row = {"id": rec["id"], "user": rec["user"], "backend": rec["backend"],
               "backend_id": rec.get("backend_id"), "state": rec["state"],
               "created": rec["created"], "updated": rec["updated"],
               "record": json.dumps(rec)}
        with self.engine.begin() as conn:
            n = conn.execute(jobs.update().where(jobs.c.id == rec["id"]).values(**row)).rowcount
            if not n:
                conn.execute(jobs.insert().values(**row))

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs.c.record).where(jobs.c.id == job_id)).first()
        return json.loads(row[0]) if row else None

    def for_user(self, user: str) -> list[dict[str, Any]]:
        q = sa.select(jobs.c.record).where(jobs.c.user == user).order_by(jobs.c.created)
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]

    def in_states(self, states, user: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(jobs.c.record).where(jobs.c.state.in_(list(states))).order_by(jobs.c.created)
        if user is not None:
            q = q.where(jobs.c.user == user)
        with self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(q)]
