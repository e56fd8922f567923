"""Schema versions of the lens database (Alembic, as JupyterHub does it).

The migrations ship in ``jupyter_ext/db/alembic/versions``; the revision a
database is at is kept in its ``lens_alembic_version`` table (not
``alembic_version``, so lens may share a PostgreSQL database with another
Alembic user). A database is in one of these states:

- ``empty``: no lens table yet. It is created at the head revision, always.
- ``current``: at the head revision. Nothing to do.
- ``unversioned``: lens tables but no version table: made by lens before it had
  migrations (the schema of commit bb3bb8c, revision ``0001``, which creates
  only the tables that are missing). Upgraded automatically when it is SQLite
  (a backup copy is made first), unless the policy says ``never``.
- ``behind``: at an older revision. Upgraded only if the policy says ``always``;
  otherwise :class:`SchemaError` says to run ``lens db upgrade``.
- ``unknown``: a revision this lens does not know (a newer lens made it), or
  lens-like tables it does not know. Never touched.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .engine import configure_engine, sqlite_file, write_lock
from .tables import metadata

VERSION_TABLE = "lens_alembic_version"
MIGRATIONS = Path(__file__).parent / "alembic"
POLICIES = ("auto", "always", "never")
# The tables lens made before it had migrations (commit bb3bb8c): revision 0001.
INITIAL_REVISION = "0001"
INITIAL_TABLES = frozenset({
    "lens_budgets", "lens_holds", "lens_entries", "lens_balances", "lens_alerts", "lens_usage_intervals",
    "lens_server_events", "lens_meter_watermarks", "lens_archives", "atom_jobs", "lens_accounts",
    "lens_workshops", "lens_workshop_seats",
})
_PG_LOCK_KEY = 0x6C656E73  # "lens": one schema change at a time across processes

log = logging.getLogger("lens.db")


class SchemaError(RuntimeError):
    """The database's schema is not one this lens can use as it is; the message says what to do."""


@dataclass(frozen=True)
class Status:
    state: str  # empty | unversioned | current | behind | unknown
    revision: str | None  # what the version table says (None: no version table)
    head: str
    strangers: tuple[str, ...] = ()  # lens-like tables no revision knows


def _alembic_config(conn: sa.Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    return _scripts().get_current_head()


def _is_lens_table(name: str) -> bool:
    return name.startswith(("lens_", "atom_")) and name != VERSION_TABLE


def schema_status(conn: sa.Connection) -> Status:
    scripts = _scripts()
    head = scripts.get_current_head()
    names = set(sa.inspect(conn).get_table_names())
    if VERSION_TABLE in names:
        revision = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        if revision == head:
            return Status("current", revision, head)
        known = {s.revision for s in scripts.walk_revisions()}
        if revision is None:  # an emptied version table: treat as made before migrations
            names.discard(VERSION_TABLE)
        else:
            return Status("behind" if revision in known else "unknown", revision, head)
    ours = {n for n in names if _is_lens_table(n)}
    if not ours:
        return Status("empty", None, head)
    strangers = tuple(sorted(ours - INITIAL_TABLES))
    return Status("unknown" if strangers else "unversioned", None, head, strangers)


def describe(url: sa.URL | str, status: Status) -> str:
    where = sa.make_url(url).render_as_string(hide_password=True)
    if status.state == "unversioned":
        return f"the lens database {where} was made before lens had schema versions"
    if status.state == "behind":
        return f"the lens database {where} is at schema revision {status.revision}; this lens needs {status.head}"
    if status.state == "unknown" and status.strangers:
        return f"the lens database {where} has tables this lens does not know: {', '.join(status.strangers)}"
    if status.state == "unknown":
        return (f"the lens database {where} is at schema revision {status.revision}, which this lens does "
                f"not know (made by a newer lens?); this lens needs {status.head}")
    return f"the lens database {where} is {status.state} (revision {status.revision or 'none'})"


def _upgrade_hint(url: sa.URL) -> str:
    return (f"Back it up, then run `lens db upgrade --db {url.render_as_string(hide_password=True)}` "
            "(or `lens db upgrade` with the same LENS_DB_URL / LENS_STATE_DIR).")


def backup_sqlite(path: str) -> str:
    """A consistent copy next to the file (``lens.sqlite.<UTC time>.bak``), WAL included."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    target = f"{path}.{stamp}.bak"
    src, dst = sqlite3.connect(path), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


@dataclass(frozen=True)
class UpgradeResult:
    before: Status
    after: Status
    backup: str | None


def upgrade(engine: Engine, revision: str = "head", backup: bool = True) -> UpgradeResult:
    """Bring the database to ``revision`` (one process at a time; SQLite files are backed up first)."""
    from alembic import command

    configure_engine(engine)
    copy = None
    with write_lock(engine), engine.execution_options(lens_immediate=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = schema_status(conn)
        if before.state == "unknown":
            raise SchemaError(describe(engine.url, before) + "; it was left alone.")
        if before.state != "current" or revision != "head":
            path = sqlite_file(engine.url)
            if backup and path and before.state != "empty":
                copy = backup_sqlite(path)
                log.warning("backed up %s to %s before upgrading", path, copy)
            command.upgrade(_alembic_config(conn), revision)
        after = schema_status(conn)
    engine._lens_schema_ok = after.state == "current"
    return UpgradeResult(before, after, copy)


def ensure_schema(engine: Engine, policy: str = "auto") -> Status:
    """Make sure the database has the head schema, or raise :class:`SchemaError`.

    An empty database is created. ``policy`` says what happens to an existing
    one that is not current: ``auto`` upgrades an unversioned SQLite database
    (made before migrations) and refuses anything else; ``always`` upgrades
    whatever it can; ``never`` refuses. Cheap once the engine was found current.
    """
    if policy not in POLICIES:
        raise ValueError(f"database upgrade policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if getattr(engine, "_lens_schema_ok", False):
        return Status("current", None, "")
    configure_engine(engine)
    with engine.execution_options(lens_readonly=True).connect() as conn:
        status = schema_status(conn)
    if status.state == "current":
        engine._lens_schema_ok = True
        return status
    allowed = (
        status.state == "empty"
        or policy == "always" and status.state in ("unversioned", "behind")
        or policy == "auto" and status.state == "unversioned" and engine.dialect.name == "sqlite"
    )
    if not allowed:
        hint = "" if status.state == "unknown" else " " + _upgrade_hint(engine.url)
        raise SchemaError(describe(engine.url, status) + "." + hint)
    result = upgrade(engine)
    if status.state != "empty":
        log.warning("%s: upgraded it to %s", describe(engine.url, status), result.after.revision)
    return result.after


def drop_schema(engine: Engine) -> None:
    """Drop every lens table and the version table (tests and benchmarks start from empty books)."""
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    engine._lens_schema_ok = False
