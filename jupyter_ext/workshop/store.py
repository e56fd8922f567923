"""The workshop tables in the lens database (SQLite by default, PostgreSQL too)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from ..db.engine import make_engine
from ..db.migrate import ensure_schema
from ..db.tables import seats, workshops
from .model import Workshop, utcnow
from .roster import Seat


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(x for x in (text or "").split(",") if x)


class WorkshopStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        ensure_schema(engine)

    @classmethod
    def from_url(cls, url: str) -> WorkshopStore:
        return cls(make_engine(url))

    def _to_workshop(self, row, seat_names=()) -> Workshop:
        return Workshop(
            name=row.name,
            expires_at=row.expires_at,
            profiles=_split(row.profiles),
            budget_per_seat_micro=row.budget_per_seat_micro,
            content_repo=row.content_repo,
            content_ref=row.content_ref,
            instructors=_split(row.instructors),
            closed_at=row.closed_at,
            created_at=row.created_at,
            seats=tuple(seat_names),
        )

    def get(self, name: str) -> Workshop | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(workshops).where(workshops.c.name == name)).first()
            if row is None:
                return None
            names = conn.execute(
                sa.select(seats.c.username).where(seats.c.workshop == name).order_by(seats.c.username)
            ).scalars()
            return self._to_workshop(row, list(names))

    def list(self) -> list[Workshop]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(workshops).order_by(workshops.c.name)).all()
            members: dict[str, list[str]] = {}
            for ws, user in conn.execute(sa.select(seats.c.workshop, seats.c.username).order_by(seats.c.username)):
                members.setdefault(ws, []).append(user)
        return [self._to_workshop(r, members.get(r.name, [])) for r in rows]

    def for_groups(self, groups: set[str]) -> list[Workshop]:
        if not groups:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(workshops).where(workshops.c.name.in_(sorted(groups)))).all()
        return [self._to_workshop(r) for r in rows]

    def for_seat(self, username: str, groups: set[str]) -> list[Workshop]:
        """The workshops among ``groups`` that have ``username`` as a seat: a member of
        a workshop's group who is not one of its seats is not bound by it."""
        if not groups:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(workshops)
                .join(seats, seats.c.workshop == workshops.c.name)
                .where(workshops.c.name.in_(sorted(groups)), seats.c.username == username)
            ).all()
        return [self._to_workshop(r, (username,)) for r in rows]

    def save(self, ws: Workshop) -> Workshop:
        """Insert or update the settings (never the seats; see add_seats)."""
        values = {
            "expires_at": ws.expires_at,
            "profiles": ",".join(ws.profiles),
            "budget_per_seat_micro": ws.budget_per_seat_micro,
            "content_repo": ws.content_repo,
            "content_ref": ws.content_ref,
            "instructors": ",".join(ws.instructors),
            "closed_at": ws.closed_at,
        }
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(workshops.c.name).where(workshops.c.name == ws.name)).first()
            if exists:
                conn.execute(workshops.update().where(workshops.c.name == ws.name).values(**values))
            else:
                created = ws.created_at or utcnow()
                conn.execute(workshops.insert().values(name=ws.name, created_at=created, **values))
                ws = replace(ws, created_at=created)
        return self.get(ws.name)

    def add_seats(self, name: str, new: list[Seat]) -> list[str]:
        """Record seats not yet recorded; return the user names added."""
        added = []
        with self.engine.begin() as conn:
            have = set(conn.execute(sa.select(seats.c.username).where(seats.c.workshop == name)).scalars())
            for seat in new:
                if seat.username in have:
                    continue
                conn.execute(
                    seats.insert().values(
                        workshop=name, username=seat.username, display_name=seat.display_name, email=seat.email
                    )
                )
                added.append(seat.username)
        return added

    def seat_details(self, name: str) -> list[Seat]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(seats).where(seats.c.workshop == name).order_by(seats.c.username))
            return [Seat(r.username, r.display_name, r.email) for r in rows]

    def workshop_of(self, username: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(seats.c.workshop).where(seats.c.username == username)).scalars())

    def set_expiry(self, name: str, expires_at: datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(workshops.update().where(workshops.c.name == name).values(expires_at=expires_at))

    def close(self, name: str, when: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(workshops.update().where(workshops.c.name == name).values(closed_at=when or utcnow()))
