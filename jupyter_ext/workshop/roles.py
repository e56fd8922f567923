"""Instructor roles: JupyterHub roles scoped to one workshop's group.

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
INSTRUCTOR_SCOPES = (
    "list:users",
    "read:users",
    "read:users:activity",
    "read:servers",
    "access:servers",
    "servers",
    "users:activity",
    "read:groups",
)


def role_name(workshop: str) -> str:
    return f"workshop-{workshop}-instructors"


def instructor_role(ws: Workshop) -> dict:
    """A load_roles entry: every scope filtered to the workshop's group."""
    g = ws.name
    scopes = [f"{s}!group={g}" for s in INSTRUCTOR_SCOPES]
    # User servers check access with jupyterhub.services.auth.check_scopes, which
    # cannot resolve group filters to users (documented upstream): name each seat.
    scopes += [f"access:servers!user={seat}" for seat in ws.seats]
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
