"""Make tests/db/data/lens-bb3bb8c.sqlite: a lens database as lens made it at
commit bb3bb8c, before the database had migrations.

Run it against a bb3bb8c checkout (it refuses any other code)::

    git -C /work/main worktree add /work/wt-bb3 bb3bb8c
    rm -f tests/db/data/lens-bb3bb8c.sqlite
    PYTHONPATH=/work/wt-bb3 .venv/bin/python tests/db/make_fixture.py tests/db/data/lens-bb3bb8c.sqlite

It drives that code the way an operator and the service did: ``lens users add``
and ``lens budgets set`` through its CLI (``python -m jupyter_ext.cli``), then
its Python APIs for what has no CLI without a running hub: ledger holds,
charges, records, overrides and alerts, metered usage intervals, the service's
tables (server events, meter watermarks, the archive catalog), HPC job records
and a workshop with seats. Times are fixed in November 2026, so the test can ask
the ledger about that period. ``tests/db/test_migrations.py`` upgrades a copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # inside the fixture's monthly period 2026-11
NAIVE = AT.replace(tzinfo=None)
PASSWORDS = {"alice": "alice-fixture-pw-1", "bob": "bob-fixture-pw-2", "root": "root-fixture-pw-3",
             "ws1-01": "seat-fixture-pw-01", "ws1-02": "seat-fixture-pw-02"}


def check_code() -> None:
    if importlib.util.find_spec("jupyter_ext.db") is not None:
        sys.exit("make_fixture.py: this is not bb3bb8c's code (it has jupyter_ext.db); "
                 "set PYTHONPATH to a checkout of commit bb3bb8c")
    spec = importlib.util.find_spec("jupyter_ext.cli")
    if spec is None or spec.submodule_search_locations:  # bb3bb8c has jupyter_ext/cli.py, a module
        sys.exit("make_fixture.py: jupyter_ext.cli is not bb3bb8c's single-module CLI; "
                 "set PYTHONPATH to a checkout of commit bb3bb8c")


def lens(env: dict, *argv: str) -> None:
    # cwd: `python -m` puts it first on sys.path, ahead of PYTHONPATH (the bb3bb8c checkout)
    subprocess.run([sys.executable, "-m", "jupyter_ext.cli", *argv], env=env, check=True, cwd=env["LENS_STATE_DIR"])


def main(out: str) -> None:
    check_code()
    out = os.path.abspath(out)
    if os.path.exists(out):
        sys.exit(f"make_fixture.py: {out} exists; remove it first")
    url = f"sqlite:///{out}"
    state = tempfile.mkdtemp(prefix="lens-bb3-state-")  # secrets the CLI makes go here, not beside `out`
    env = {**os.environ, "LENS_DB_URL": url, "LENS_STATE_DIR": state}
    os.environ.update(env)

    # --- the CLI, as an admin would --------------------------------------------------
    lens(env, "users", "add", "alice", "--password", PASSWORDS["alice"])
    lens(env, "users", "add", "bob", "--password", PASSWORDS["bob"])
    lens(env, "users", "add", "root", "--admin", "--password", PASSWORDS["root"])
    lens(env, "users", "disable", "bob")
    lens(env, "budgets", "set", "user:alice", "100")
    lens(env, "budgets", "set", "group:lab", "500", "--thresholds", "50,90")
    lens(env, "budgets", "set", "hub", "10000")

    # --- the service's start: its tables and the archive catalog's --------------------
    import sqlalchemy as sa
    from jupyter_ext.hub.accounts import AccountStore

    from jupyter_ext.atom.store import JobStore
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger
    from jupyter_ext.costs.usage import UsageMeter
    from jupyter_ext.service import archive_routes
    from jupyter_ext.service.db import metadata as service_metadata
    from jupyter_ext.service.db import meter_watermarks, server_events
    from jupyter_ext.workshop.model import Workshop
    from jupyter_ext.workshop.roster import Seat
    from jupyter_ext.workshop.store import WorkshopStore

    engine = make_engine(url)
    service_metadata.create_all(engine)  # what LensService.initialize and archive_routes.setup did

    # --- the ledger: holds, charges, releases, records, an override, alerts -----------
    ledger = Ledger(engine)
    ledger.set_budget("group:ws1", 20_000_000, period="window", start=NAIVE - timedelta(days=2),
                      end=NAIVE + timedelta(days=5), now=AT)
    job_hold = ledger.hold(["user:alice", "group:lab"], 7_000_000, "jobs", "j-fixture00001",
                           "atom job sim (c7i.large x 1)", now=AT)
    ledger.charge(job_hold, 5_250_000, now=AT + timedelta(hours=1))
    open_hold = ledger.hold(["user:alice", "group:lab"], 3_000_000, "jobs", "j-fixture00002",
                            "atom job big (c7i.xlarge x 2)", now=AT + timedelta(hours=2))
    gone = ledger.hold(["user:alice"], 1_000_000, "servers", "alice/", now=AT)
    ledger.release(gone, now=AT + timedelta(minutes=1))
    ledger.record(["user:alice", "group:lab"], 50_000_000, "servers", "alice/", now=AT + timedelta(hours=3))
    ledger.record(["user:ws1-01", "group:ws1"], 1_500_000, "servers", "ws1-01/", now=AT)
    ledger.record(["hub"], 2_000_000, "storage", "hub:shared", now=AT)
    ledger.override("user:alice", by="root", until=NAIVE + timedelta(days=3), reason="paper deadline", now=AT)

    meter = UsageMeter(ledger)
    meter.start("alice/gpu", "servers", ["user:alice"], "0.526", at=AT, snapshot={"region": "us-east-1"},
                detail={"profile": "gpu"})
    meter.accrue(now=AT + timedelta(hours=1))
    meter.start("dask:alice.1", "dask", ["user:alice", "group:lab"], "0.10", at=AT)
    meter.stop("dask:alice.1", at=AT + timedelta(minutes=30))

    # --- the service's own tables ------------------------------------------------------
    with engine.begin() as conn:
        conn.execute(server_events.insert(), [
            {"user": "alice", "server": "", "profile": "cpu-small", "rate_usd_per_hour": 0.0416,
             "event": "start", "at": NAIVE},
            {"user": "alice", "server": "", "profile": "cpu-small", "rate_usd_per_hour": 0.0416,
             "event": "stop", "at": NAIVE + timedelta(hours=2)},
            {"user": "ws1-01", "server": "", "profile": "cpu-small", "rate_usd_per_hour": 0.0416,
             "event": "start", "at": NAIVE},
        ])
        conn.execute(meter_watermarks.insert().values(source="dask-gateway", until_ms=1_795_000_000_000,
                                                      updated_at=NAIVE))
        conn.execute(archive_routes.archives.insert(), [
            {"owner": "user:alice", "archive_id": "a-0001", "name": "thesis data", "storage_class": "GLACIER_IR",
             "size": 5 * 2**30, "added_bytes": 4 * 2**30, "files": 1200, "repository": "s3://lens-archive/alice",
             "created": NAIVE},
            {"owner": "user:alice", "archive_id": "a-0002", "name": "raw runs", "storage_class": "DEEP_ARCHIVE",
             "size": 40 * 2**30, "added_bytes": 40 * 2**30, "files": 88, "repository": "s3://lens-archive/alice",
             "created": NAIVE + timedelta(hours=1)},
        ])

    # --- HPC jobs, as the manager records them ---------------------------------------
    jobs = JobStore(engine)
    base = {"groups": ["lab"], "project": "lab", "accounts": ["user:alice", "group:lab"], "reason": "",
            "runtime_s": 0.0, "array_size": 1, "nodes": 1, "counts": {}, "failure": None,
            "cancel_requested": False, "image": "ghcr.io/lens/sim:1.0", "cost_so_far_micro": 0,
            "submitted_at": None, "started_at": None, "ended_at": None, "exit_code": None, "cost_micro": None}
    created = AT.timestamp()
    jobs.put({**base, "id": "j-fixture00001", "user": "alice", "name": "sim", "backend": "local",
              "backend_id": "4242", "state": "COMPLETED", "exit_code": 0, "created": created,
              "estimate": {"est_cost_micro": 7_000_000, "instance_type": "c7i.large"}, "hold_id": job_hold,
              "cost_micro": 5_250_000, "runtime_s": 3600.0, "spec": {"name": "sim", "app": "sim"}})
    jobs.put({**base, "id": "j-fixture00002", "user": "alice", "name": "big", "backend": "slurm",
              "backend_id": "17", "state": "RUNNING", "created": created + 7200,
              "estimate": {"est_cost_micro": 3_000_000, "instance_type": "c7i.xlarge"}, "hold_id": open_hold,
              "nodes": 2, "spec": {"name": "big", "app": "sim"}})

    # --- a workshop with two seats (what `lens workshop create` writes) --------------
    store = WorkshopStore(engine)
    store.save(Workshop(name="ws1", expires_at=NAIVE + timedelta(days=5), profiles=("cpu-small",),
                        budget_per_seat_micro=10_000_000, content_repo="https://example.org/course.git",
                        content_ref="main", instructors=("alice",), created_at=NAIVE - timedelta(days=2)))
    store.add_seats("ws1", [Seat("ws1-01", "Ada Lovelace", "ada@example.org"),
                            Seat("ws1-02", "Alan Turing", "alan@example.org")])
    accounts = AccountStore(engine)
    for seat in ("ws1-01", "ws1-02"):
        accounts.create(seat, password=PASSWORDS[seat], workshop="ws1", expires_at=NAIVE + timedelta(days=5))

    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in sorted(sa.inspect(conn).get_table_names())}
    engine.dispose()
    with sa.create_engine(url).connect() as conn:  # one file, no WAL left beside it
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    print(json.dumps(counts, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
