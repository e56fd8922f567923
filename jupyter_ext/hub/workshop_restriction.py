"""What a workshop member may spawn: read by the spawner from the lens DB.

Hub-side and synchronous (the spawner calls it in a thread). Users in no
workshop get no restriction; admins are never restricted (the spawner checks).
Only a workshop's seats are bound by it, not every member of its hub group (an
adopted group keeps members that are not seats); an adopted seat (an account
the workshop did not make) is bound only while the workshop is open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import sqlalchemy as sa

from jupyter_ext.accounts import AccountStore
from jupyter_ext.db.engine import default_url
from jupyter_ext.db.migrate import SchemaError
from jupyter_ext.workshop.content import server_pull_path
from jupyter_ext.workshop.expiry import allowed_profiles, refusal
from jupyter_ext.workshop.model import WorkshopError, utcnow
from jupyter_ext.workshop.store import WorkshopStore

_stores: dict[str, WorkshopStore] = {}


@dataclass(frozen=True)
class SpawnRules:
    allowed: set[str] | None = None  # None: any profile the catalog allows
    refusal: str | None = None  # the workshop is over: refuse every spawn
    default_url: str | None = None  # nbgitpuller link to the course content
    workshops: tuple[str, ...] = ()


def default_db_url() -> str:
    return default_url()


def no_database_yet(url: str) -> bool:
    """A SQLite file that does not exist (a hub before its first `lens workshop create`)."""
    parsed = sa.engine.make_url(url)
    return parsed.get_backend_name() == "sqlite" and bool(parsed.database) and \
        parsed.database != ":memory:" and not os.path.exists(parsed.database)


def _store(url: str) -> WorkshopStore:
    if url not in _stores:
        _stores[url] = WorkshopStore.from_url(url)
    return _stores[url]


def spawn_rules(groups: set[str], db_url: str | None = None, user: str | None = None) -> SpawnRules:
    """The rules for a user in these hub groups. With ``user`` (what the spawner
    passes), only the workshops that have the user as a seat count."""
    if not groups:
        return SpawnRules()
    url = db_url or default_db_url()
    if no_database_yet(url):
        return SpawnRules()  # nothing was ever written: there are no workshops
    now = utcnow()
    try:
        store = _store(url)
        if user is None:
            workshops = store.for_groups(groups)
        else:
            workshops = store.for_seat(user, groups)
            if workshops:
                acct = AccountStore(store.engine).get(user)
                tagged = acct.workshop if acct is not None else None
                # adopted: an existing account, bound only while the workshop is open
                workshops = [w for w in workshops if w.name == tagged or w.active(now)]
    except (sa.exc.SQLAlchemyError, SchemaError):  # SchemaError: the database needs `lens db upgrade`
        # Fail closed: a seat must never get around its workshop's limits.
        return SpawnRules(refusal="The workshop settings could not be read; try again shortly.")
    if not workshops:
        return SpawnRules()
    content = next((w for w in workshops if w.active(now) and w.content_repo), None)
    try:
        pull_url = server_pull_path(content.content_repo, content.content_ref) if content else None
    except WorkshopError:  # a stored URL or ref no link may carry (checked again at every build)
        pull_url = None
    return SpawnRules(
        allowed=allowed_profiles(workshops, now),
        refusal=refusal(workshops, now),
        default_url=pull_url,
        workshops=tuple(w.name for w in workshops),
    )
