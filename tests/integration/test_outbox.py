"""Calls that must not be lost reach the lens service once, after an outage.

The real stack: the lens service is SIGKILLed; an archive's registration (from
the user's server) or a server's stop event (from the hub) fails and is kept in
the caller's durable outbox; JupyterHub restarts the service; the outbox
delivers (timer); a replay of the same call (same idempotency key) changes nothing.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.integration.conftest import as_kernel_of
from tests.integration.test_archive_magics import write_tree
from tests.integration.test_dask_charging import is_dead, lens_service_proc, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def archivist_home(stack, monkeypatch):
    name = "outboxer"
    token = stack.create_user(name)
    stack.spawn(name, "lab")
    as_kernel_of(monkeypatch, stack, name, token)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(f"jupyter-{name}")
        yield name, token, Path(entry.pw_dir), entry
    else:
        yield name, token, stack.state / "homes" / name, None
    stack.stop_server(name)


def intervals_of(stack, ref: str) -> list[tuple]:
    engine = sa.create_engine(stack.env.get("LENS_DB_URL") or f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, category, stopped_at, started_at FROM lens_usage_intervals "
                                        "WHERE ref = :r ORDER BY id"), {"r": ref}).all()
    finally:
        engine.dispose()
    return [(i, cat, as_time(stopped), as_time(started)) for i, cat, stopped, started in rows]


def as_time(value) -> datetime | None:
    """Naive UTC (SQLite gives text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def kill_lens_service(stack):
    proc = lens_service_proc(stack)
    assert proc is not None, "lens service process not found among the hub's children"
    proc.send_signal(signal.SIGKILL)
    wait_for("the lens service to die", lambda: is_dead(proc), 10)
    assert requests.get(f"{stack.url}/services/lens/api/health", timeout=10).status_code >= 500
    return proc


def wait_restarted(stack, proc) -> None:
    health = f"{stack.url}/services/lens/api/health"
    wait_for("JupyterHub to restart the lens service",
             lambda: (p := lens_service_proc(stack)) and p.pid != proc.pid, 90)
    wait_for("the restarted service to answer", lambda: requests.get(health, timeout=5).status_code in (200, 403), 60)


def meter(stack, body: dict, key: str) -> requests.Response:
    gate = (stack.state / "secrets" / "lens-gate.token").read_text().strip()
    return requests.post(f"{stack.url}/services/lens/api/meter/servers", json=body, timeout=10,
                         headers={"Authorization": f"token {gate}", "Idempotency-Key": key})


def outbox_keys(home: Path) -> list[str]:
    with sqlite3.connect(home / ".local/share/lens/outbox.sqlite") as conn:
        return [row[0] for row in conn.execute("SELECT key FROM outbox")]


def catalog(stack, token: str) -> list[dict]:
    r = requests.get(f"{stack.url}/services/lens/api/archives", headers={"Authorization": f"token {token}"},
                     timeout=10)
    return r.json()["archives"] if r.status_code == 200 else []


def test_archive_registered_during_a_service_outage_is_metered_once(ip, stack, archivist_home, monkeypatch):
    import jupyter_ext.kernel.magics.archive as am

    monkeypatch.setattr(am, "display", lambda *a, **k: None)
    name, token, home, owner = archivist_home
    write_tree(home, owner)
    run = f"outage-{secrets.token_hex(4)}"

    proc = kill_lens_service(stack)
    # the archive itself succeeds; its registration cannot reach the service
    task = ip.run_line_magic("archive", f"results --name {run} --wait")
    assert task["status"] == "done", task
    archive_id = task["result"]["archive"]["id"]
    assert f"archive:{archive_id}" in outbox_keys(home)  # kept in the server's outbox

    wait_restarted(stack, proc)
    # the server's outbox timer (5 s in this package's stack) delivers the registration
    wait_for("the archive in the service's catalog", lambda: run in [a["name"] for a in catalog(stack, token)], 90)
    ref = f"archive:{name}/{archive_id}"
    # the row and its metering are written one after the other: wait for the second
    wait_for("the archive's storage metering", lambda: intervals_of(stack, ref), 15)
    assert [row[1] for row in intervals_of(stack, ref)] == ["storage"]  # metered, once
    assert f"archive:{archive_id}" not in outbox_keys(home)  # delivered, so no longer kept

    # the same registration again (an answer lost on the way back): applied at most once
    record = next(a for a in catalog(stack, token) if a["name"] == run)
    again = requests.post(
        f"{stack.url}/services/lens/api/archives", timeout=10,
        headers={"Authorization": f"token {token}", "Idempotency-Key": f"archive:{archive_id}"},
        json={k: record[k] for k in ("archive_id", "name", "storage_class", "size", "added_bytes", "files")},
    )
    assert again.status_code == 200 and again.json().get("duplicate") is True, again.text
    assert len(intervals_of(stack, ref)) == 1
    assert [a["name"] for a in catalog(stack, token)].count(run) == 1


def test_a_metering_event_is_applied_once_per_key_at_its_own_time(stack):
    stack.create_user("m-once")
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    start = {"user": "m-once", "server": "", "profile": "lab", "rate": 1.0, "event": "start",
             "at": hour_ago.isoformat()}
    first = meter(stack, start, "k-start")
    assert first.status_code == 201, first.text
    again = meter(stack, start, "k-start")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    rows = intervals_of(stack, "server:m-once/")
    assert len(rows) == 1 and rows[0][2] is None
    assert abs((rows[0][3] - hour_ago.replace(tzinfo=None)).total_seconds()) < 1  # metered from its own time
    stop = {**start, "event": "stop", "at": datetime.now(UTC).isoformat()}
    assert meter(stack, stop, "k-stop").status_code == 201
    # a late replay of the start (its answer was lost) does not open a second interval
    assert meter(stack, start, "k-start").json()["duplicate"] is True
    rows = intervals_of(stack, "server:m-once/")
    assert len(rows) == 1 and rows[0][2] is not None
    assert meter(stack, {**start, "at": "yesterday"}, "k-bad").status_code == 400


def test_a_stop_during_an_outage_is_metered_at_its_own_time(stack):
    name = "m-outage"
    stack.create_user(name)
    stack.spawn(name, "lab")
    wait_for("the start to be metered", lambda: intervals_of(stack, f"server:{name}/"), 30)
    proc = kill_lens_service(stack)
    stack.stop_server(name)
    stopped = datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(stack.state / "lens-outbox.sqlite") as conn:
        kept = [row[0] for row in conn.execute("SELECT key FROM outbox")]
    assert any(k.startswith(f"meter:server:{name}/:stop:") for k in kept), kept
    wait_restarted(stack, proc)
    # the hub's outbox timer (30 s) delivers the stop, which closes the interval at its own time
    rows = wait_for("the interval to be closed",
                    lambda: [r for r in intervals_of(stack, f"server:{name}/") if r[2] is not None], 90)
    delivered = datetime.now(UTC).replace(tzinfo=None)
    assert len(intervals_of(stack, f"server:{name}/")) == 1
    assert abs((rows[0][2] - stopped).total_seconds()) < 10
    assert (delivered - stopped).total_seconds() > 5  # really delivered later, after the outage
