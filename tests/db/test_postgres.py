"""The bb3bb8c database on PostgreSQL: its schema (as that code declared it) and
its rows, upgraded by `lens db upgrade`, lose nothing and read back."""

from __future__ import annotations

import importlib.util

import pytest
import sqlalchemy as sa

from jupyter_ext.accounts import AccountStore
from jupyter_ext.atom.store import JobStore
from jupyter_ext.costs.ledger import Ledger
from jupyter_ext.db.engine import make_engine
from jupyter_ext.db.migrate import (
    INITIAL_TABLES,
    SchemaError,
    ensure_schema,
    schema_status,
    upgrade,
)
from jupyter_ext.db.tables import metadata
from tests.conftest import require
from tests.costs.pg import pg_bindir, postgres_cluster
from tests.db.conftest import AT, FIXTURE, PASSWORDS


@pytest.fixture(scope="module")
def pg_url():
    require(pg_bindir() is not None, "PostgreSQL server binaries (Debian package postgresql)")
    require(importlib.util.find_spec("psycopg") is not None, "psycopg (pip: psycopg[binary])")
    with postgres_cluster() as url:
        yield url


def typed_rows(engine) -> dict[str, list[tuple]]:
    """Every row of every table bb3bb8c had, read through the declared column types
    (dialect-neutral); tables added by later revisions start empty."""
    with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
                for name, table in metadata.tables.items() if name in INITIAL_TABLES}


def load_bb3bb8c(sqlite_engine, pg_engine) -> None:
    """Create the fixture's schema (the tables bb3bb8c declared) on PostgreSQL, then its rows."""
    old = sa.MetaData()
    old.reflect(sqlite_engine)
    for table in old.tables.values():
        for column in table.columns:
            column.type = column.type.as_generic()  # SQLite's DATETIME etc. -> what the code declared
    old.create_all(pg_engine)
    with sqlite_engine.connect() as src, pg_engine.begin() as dst:
        for table in old.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(sa.select(table))]
            dst.execute(table.insert(), rows)
            if "id" in table.c and isinstance(table.c.id.type, sa.Integer):
                dst.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                    f"(SELECT max(id) FROM {table.name}))"))


def test_a_bb3bb8c_database_on_postgresql_upgrades_and_loses_nothing(pg_url):
    sqlite_engine = sa.create_engine(f"sqlite:///{FIXTURE}")
    engine = make_engine(pg_url)
    load_bb3bb8c(sqlite_engine, engine)
    before = typed_rows(engine)
    assert before == typed_rows(sqlite_engine) and all(before[t] for t in INITIAL_TABLES)
    with engine.connect() as conn:
        assert schema_status(conn).state == "unversioned"

    # the service's default policy upgrades only SQLite on its own: PostgreSQL needs the command
    with pytest.raises(SchemaError, match="lens db upgrade --db postgresql"):
        ensure_schema(engine)
    result = upgrade(engine)  # what `lens db upgrade` runs
    assert (result.before.state, result.after.state, result.backup) == ("unversioned", "current", None)
    engine.dispose()

    engine = make_engine(pg_url)
    assert ensure_schema(engine, "never").state == "current"
    assert typed_rows(engine) == before
    ledger = Ledger(engine)
    assert ledger.verify() == []
    assert ledger.summary("user:alice", now=AT).budget_micro == 100_000_000
    assert ledger.get_hold(ledger.hold(["user:alice"], 1_000, "jobs", "j-after", now=AT))["status"] == "open"
    assert AccountStore(engine).check("alice", PASSWORDS["alice"])[0].username == "alice"
    assert [j["id"] for j in JobStore(engine).for_user("alice")] == ["j-fixture00001", "j-fixture00002"]
    engine.dispose()
