"""The lens database's migrations: the initial revision is the schema of commit
bb3bb8c, a database made by that code upgrades without losing a row, and the
service and `lens db` say what to do with a database they may not upgrade."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jupyter_ext.accounts import AccountStore
from jupyter_ext.atom.store import JobStore
from jupyter_ext.cli.main import main as lens
from jupyter_ext.costs.ledger import Ledger
from jupyter_ext.db.engine import make_engine
from jupyter_ext.db.migrate import (
    INITIAL_TABLES,
    VERSION_TABLE,
    SchemaError,
    ensure_schema,
    head_revision,
    schema_status,
    upgrade,
)
from jupyter_ext.db.tables import metadata
from jupyter_ext.workshop.store import WorkshopStore
from tests.db.conftest import AT, FIXTURE, PASSWORDS


def raw_rows(path) -> dict[str, list[tuple]]:
    """Every row of every lens table, exactly as SQLite stores it."""
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                for n in names if n in INITIAL_TABLES}


def shape(engine) -> dict[str, dict]:
    """Columns (name, type, nullability, key), indexes and unique constraints per table."""
    insp = sa.inspect(engine)
    out = {}
    for table in sorted(n for n in insp.get_table_names() if n != VERSION_TABLE):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in insp.get_indexes(table)),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return out


def test_a_new_database_is_created_at_head_and_matches_the_declared_tables(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/new.sqlite")
    assert ensure_schema(engine).state == "current"
    with engine.connect() as conn:
        assert schema_status(conn).revision == head_revision()
        # the migrations build exactly what jupyter_ext.db.tables declares
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_the_initial_revision_is_the_schema_of_bb3bb8c(tmp_path):
    new = make_engine(f"sqlite:///{tmp_path}/new.sqlite")
    upgrade(new, "0001", backup=False)
    old = sa.create_engine(f"sqlite:///{FIXTURE}")
    assert set(shape(old)) == INITIAL_TABLES
    assert shape(new) == shape(old)


def test_a_bb3bb8c_database_upgrades_and_loses_nothing(bb3_copy):
    before = raw_rows(bb3_copy)
    assert set(before) == INITIAL_TABLES and all(before.values())  # every table has rows to lose
    engine = make_engine(f"sqlite:///{bb3_copy}")
    with engine.connect() as conn:
        assert schema_status(conn).state == "unversioned"

    status = ensure_schema(engine)  # the default policy upgrades an unversioned SQLite database
    assert status.state == "current"
    backups = list(bb3_copy.parent.glob("lens.sqlite.*.bak"))
    assert len(backups) == 1 and raw_rows(backups[0]) == before
    engine.dispose()
    assert raw_rows(bb3_copy) == before

    # ...and today's code reads it
    engine = make_engine(f"sqlite:///{bb3_copy}")
    ledger = Ledger(engine)
    assert ledger.verify() == []
    alice = ledger.summary("user:alice", now=AT)
    assert alice.budget_micro == 100_000_000
    with sqlite3.connect(bb3_copy) as conn:
        spent, held = conn.execute(
            "SELECT sum(spent_delta), sum(held_delta) FROM lens_entries WHERE account='user:alice' "
            "AND period_key=(SELECT period_key FROM lens_balances WHERE account='user:alice')").fetchone()
    assert (alice.spent_micro, alice.held_micro) == (spent, held) and spent > 50_000_000 and held == 3_000_000
    assert ledger.get_budget("user:alice").override_by == "root"
    assert ledger.get_budget("group:lab").thresholds == (50, 90)
    assert ledger.get_hold(ledger.hold(["user:alice"], 1_000, "jobs", "j-after", now=AT))["status"] == "open"

    accounts = AccountStore(engine)
    assert accounts.check("alice", PASSWORDS["alice"])[0].username == "alice"
    assert accounts.check("alice", "wrong") == (None, None)
    assert accounts.check("bob", PASSWORDS["bob"]) == (None, "This account has been disabled.")
    assert accounts.get("root").admin
    assert accounts.get("ws1-01").workshop == "ws1"

    jobs = JobStore(engine).for_user("alice")
    assert [(j["id"], j["state"]) for j in jobs] == [("j-fixture00001", "COMPLETED"), ("j-fixture00002", "RUNNING")]
    ws = WorkshopStore(engine).get("ws1")
    assert ws.seats == ("ws1-01", "ws1-02") and ws.instructors == ("alice",)
    assert ws.budget_per_seat_micro == 10_000_000


def test_policy_never_refuses_with_the_command_to_run(bb3_copy):
    engine = make_engine(f"sqlite:///{bb3_copy}")
    with pytest.raises(SchemaError, match="made before lens had schema versions.*lens db upgrade"):
        ensure_schema(engine, "never")
    assert raw_rows(bb3_copy) == raw_rows(FIXTURE)  # untouched
    with pytest.raises(ValueError, match="auto, always, never"):
        ensure_schema(engine, "sometimes")


def test_a_revision_from_a_newer_lens_is_left_alone(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/new.sqlite")
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfeed'"))
    fresh = make_engine(f"sqlite:///{tmp_path}/new.sqlite")
    for policy in ("auto", "always"):
        with pytest.raises(SchemaError, match="f00dfeed, which this lens does not know"):
            ensure_schema(fresh, policy)


def test_the_service_refuses_to_start_and_names_the_command(bb3_copy, capsys):
    from jupyter_ext.service.app import LensService

    service = LensService(db_url=f"sqlite:///{bb3_copy}", db_upgrade="never")
    with pytest.raises(SystemExit) as exc:
        service.initialize([])
    assert exc.value.code == 1
    err = capsys.readouterr().err  # the application's log
    assert "lens service not started" in err and f"lens db upgrade --db sqlite:///{bb3_copy}" in err


def test_the_service_upgrades_an_unversioned_sqlite_database_by_default(bb3_copy, service_env):
    from jupyter_ext.service.app import LensService

    service = LensService(db_url=f"sqlite:///{bb3_copy}")
    assert service.db_upgrade == "auto"
    service.initialize([])
    with service.engine.connect() as conn:
        assert schema_status(conn).state == "current"
    assert raw_rows(bb3_copy) == raw_rows(FIXTURE)


def test_lens_db_status_and_upgrade(bb3_copy, monkeypatch, capsys):
    monkeypatch.setenv("LENS_DB_URL", f"sqlite:///{bb3_copy}")
    assert lens(["db", "status"]) == 1
    assert "unversioned" in capsys.readouterr().out
    assert lens(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"unversioned -> {head_revision()}" in out and "backup: " in out
    assert lens(["db", "status"]) == 0
    assert lens(["db", "upgrade", "--no-backup"]) == 0
    assert "already at revision" in capsys.readouterr().out
    assert raw_rows(bb3_copy) == raw_rows(FIXTURE)


def test_the_hub_fails_closed_on_a_database_it_may_not_use(tmp_path):
    from jupyter_ext.hub.workshop_restriction import spawn_rules

    url = f"sqlite:///{tmp_path}/new.sqlite"
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfeed'"))
    rules = spawn_rules({"ws1"}, db_url=url)
    assert rules.refusal == "The workshop settings could not be read; try again shortly."


NEXT_REVISION = '''
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("lens_archives") as batch:
        batch.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))


def downgrade():
    with op.batch_alter_table("lens_archives") as batch:
        batch.drop_column("note")
'''


@pytest.fixture
def next_lens(tmp_path, monkeypatch):
    """A lens one revision ahead: the shipped migrations plus a 0003 that adds a column."""
    import shutil

    from jupyter_ext.db import migrate

    scripts = tmp_path / "alembic"
    shutil.copytree(migrate.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0003_archive_note.py").write_text(NEXT_REVISION)
    monkeypatch.setattr(migrate, "MIGRATIONS", scripts)
    return scripts


def test_a_database_behind_is_refused_unless_the_policy_or_the_command_upgrades_it(bb3_copy, next_lens, capsys):
    url = f"sqlite:///{bb3_copy}"
    with pytest.raises(SchemaError, match="made before lens had schema versions"):
        ensure_schema(make_engine(url), "never")
    assert lens(["db", "upgrade", "--db", url, "--no-backup"]) == 0
    assert "unversioned -> 0003" in capsys.readouterr().out
    # back to 0002, as an older lens left it
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0002'"))
        conn.execute(sa.text("ALTER TABLE lens_archives DROP COLUMN note"))
    for policy in ("auto", "never"):
        with pytest.raises(SchemaError, match=r"at schema revision 0002; this lens needs 0003.*lens db upgrade"):
            ensure_schema(make_engine(url), policy)
    assert lens(["db", "status", "--db", url]) == 1
    assert "behind" in capsys.readouterr().out
    assert ensure_schema(make_engine(url), "always").revision == "0003"
    after, before = raw_rows(bb3_copy), raw_rows(FIXTURE)
    assert after.pop("lens_archives") == [(*row, "") for row in before.pop("lens_archives")]
    assert after == before
