"""An archive registered while the lens service is down is metered exactly once when it returns.

The real stack: the user's server finishes the archive, the service is SIGKILLed
so the registration fails, the server keeps it in its durable outbox, JupyterHub
restarts the service, the outbox delivers it (timer), and a replay of the same
registration (same idempotency key: the archive id) changes nothing.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import sqlite3
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
            return conn.execute(sa.text("SELECT id, category, stopped_at FROM lens_usage_intervals WHERE ref = :r"),
                                {"r": ref}).all()
    finally:
        engine.dispose()


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

    proc = lens_service_proc(stack)
    assert proc is not None, "lens service process not found among the hub's children"
    proc.send_signal(signal.SIGKILL)
    wait_for("the lens service to die", lambda: is_dead(proc), 10)
    health = f"{stack.url}/services/lens/api/health"
    assert requests.get(health, timeout=10).status_code >= 500

    # the archive itself succeeds; its registration cannot reach the service
    task = ip.run_line_magic("archive", f"results --name {run} --wait")
    assert task["status"] == "done", task
    archive_id = task["result"]["archive"]["id"]
    assert f"archive:{archive_id}" in outbox_keys(home)  # kept in the server's outbox

    wait_for("JupyterHub to restart the lens service",
             lambda: (p := lens_service_proc(stack)) and p.pid != proc.pid, 90)
    wait_for("the restarted service to answer", lambda: requests.get(health, timeout=5).status_code in (200, 403), 60)
    # the server's outbox timer (20 s) delivers the registration
    wait_for("the archive in the service's catalog", lambda: run in [a["name"] for a in catalog(stack, token)], 90)
    ref = f"archive:{name}/{archive_id}"
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
