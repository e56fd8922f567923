"""Instructor roles: JupyterHub roles scoped to one workshop's seats, by name.

JupyterHub 6.1 has no REST API to create roles (roles come only from
``c.JupyterHub.load_roles`` at hub start), so the hub config loads one role per
workshop from the lens database (``roles_from_db``), and ``lens workshop
create`` says when a hub restart is needed to activate a new one. Role
assignments are reconciled at every start, so removed instructors lose it.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..db.migrate import SchemaError
from .model import Workshop

# What an instructor may do with the seats of their workshop, and nothing else.
# Each is filtered to one seat (``!user=SEAT``), never to the group: a group may
# hold accounts that are not seats (an adopted group, or members an admin added
# later), and an instructor must reach none of them. No ``read:groups`` either:
# the group's member list would name those accounts.
INSTRUCTOR_SCOPES = (
    "list:users",
    "read:users",
    "read:users:activity",
    "read:servers",
    "access:servers",
    "servers",
    "users:activity",
)


def role_name(workshop: str) -> str:
    return f"workshop-{workshop}-instructors"


def instructor_role(ws: Workshop) -> dict:
    """A load_roles entry: every scope filtered to one seat of the workshop.

    Per seat rather than ``!group=``: the group may hold accounts that are not
    seats, and user servers check access with
    ``jupyterhub.services.auth.check_scopes``, which cannot resolve group filters."""
    g = ws.name
    scopes = [f"{s}!user={seat}" for seat in ws.seats for s in INSTRUCTOR_SCOPES]
    return {
        "name": role_name(g),
        "description": f"Instructors of workshop {g}: see, open and stop its seats' servers",
        "scopes": scopes,
        "users": list(ws.instructors),
    }


def roles_from_db(db_url: str) -> list[dict]:
    """Roles for every workshop with instructors (closed ones keep read access
    through export only, so they get no role). Never fails the hub start."""
    from .store import WorkshopStore

    try:
        store = WorkshopStore.from_url(db_url)
        return [instructor_role(ws) for ws in store.list() if ws.instructors and ws.closed_at is None]
    except (sa.exc.SQLAlchemyError, SchemaError):  # no roles until the database is readable
        return []
