"""`lens workshop close` cancels the seats' jobs before it archives their homes:
the CLI's canceller (jupyter_ext.cli.workshop._job_canceller) talks to the same
local backend as the lens service; the service's refresh records and charges."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.cli.workshop import _job_canceller
from tests.atom.helpers import group_alive, group_size, settle, wait_until


async def test_close_cancels_the_seats_jobs_through_the_cli_canceller(
        shared_dir, engine, ledger, catalog, unix_users, tmp_path, monkeypatch):
    monkeypatch.delenv("LENS_SERVICE_CONFIG", raising=False)
    # the lens service's manager, with its LocalBackend in STATE/atom-local
    service = JobManager(engine, {"local": LocalBackend(state_dir=shared_dir + "/atom-local")},
                         ledger, catalog=catalog)
    spec = {"name": "long", "command": ["sh", "-c", "sleep 300 & sleep 300; wait"],
            "walltime": "01:00:00"}
    mine = await service.submit("atomalice", [], spec)
    other = await service.submit("atombob", [], spec)
    for _ in range(200):
        await service.refresh()
        if all(service.store.get(r["id"])["state"] == "RUNNING" for r in (mine, other)):
            break
        await asyncio.sleep(0.05)
    bid = service.store.get(mine["id"])["backend_id"]
    child_file = service.backends["local"].root / bid / "tasks" / "0" / "child.json"
    await wait_until("the job's child is recorded", child_file.exists)
    child = json.loads(child_file.read_text())["pid"]
    await wait_until("both sleeps run", lambda: group_size(child) >= 3)

    state = SimpleNamespace(root=shared_dir, lens_db_url=str(engine.url))
    cancel = _job_canceller(state)
    # the CLI calls it synchronously (asyncio.run), as close_workshop does
    cancelled, problems = await asyncio.to_thread(cancel, ["atomalice", "nobody"])
    assert cancelled == {"atomalice": [mine["id"]]} and problems == []

    [done] = await settle(service, "atomalice", [mine["id"]], limit=20)
    assert done["state"] == "CANCELLED"
    assert not group_alive(child)
    hold = service.store.get(mine["id"])["hold_id"]
    assert ledger.charged[hold] == done["cost_micro"]  # charged once, by the service
    assert service.get("atombob", other["id"])["state"] == "RUNNING"  # not a seat
    await service.cancel("atombob", other["id"])
    await settle(service, "atombob", [other["id"]], limit=20)
