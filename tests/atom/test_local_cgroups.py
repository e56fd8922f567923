"""Local-backend jobs in their own cgroup, for real: a job cannot escape walltime, cancel or
metering by daemonizing (``setsid sleep &`` leaves the job's session and process group).

Needs root and a writable cgroup v2 hierarchy (skipped locally without, failed under CI).
"""

from __future__ import annotations

import json
import logging
import os
import random

import pytest

from jupyter_ext.atom.backends import local as local_backend
from jupyter_ext.atom.backends._runner import GRACE_S
from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.estimate import actual_cost
from jupyter_ext.atom.manager import JobManager
from tests.atom.helpers import settle, wait_until
from tests.conftest import require

# main process exits at once / after a second, leaving a sleeper in its own session
DAEMONIZERS = {
    "setsid-then-exit": "setsid sleep {t} & exit 0",
    "double-fork-subshell": "( setsid sleep {t} & ) ; sleep 1",
}


@pytest.fixture
def manager(tmp_path, engine, ledger, catalog, unix_users):
    require(os.geteuid() == 0, "per-job cgroups and unix accounts need root")
    backend = LocalBackend(state_dir=str(tmp_path / "local"))
    require(backend.cgroup_parent is not None,
            "per-job cgroups need a writable cgroup v2 hierarchy with cgroup.kill")
    return JobManager(engine, {"local": backend}, ledger, catalog=catalog)


def job(name, script, walltime=60):
    return {"name": name, "command": ["sh", "-c", script], "walltime": walltime}


def unique_seconds(base: int) -> str:
    """A sleep duration no other test's process uses, to find our sleeper in /proc."""
    return f"{base + random.random():.6f}"


def sleepers(seconds: str) -> list[int]:
    """Live (non-zombie) ``sleep SECONDS`` processes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:-1]
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if argv == [b"sleep", seconds.encode()] and not zombie:
            found.append(int(pid))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def task_dir(manager, rec):
    backend = manager.backends["local"]
    bid = manager.store.get(rec["id"])["backend_id"]
    return backend, bid, backend.root / bid / "tasks" / "0"


async def start_daemonizer(manager, variant, walltime=60):
    """Submit a daemonizing job; return (record, sleeper pid, its cgroup) once the main
    process has exited and only the sleeper is left."""
    seconds = unique_seconds(300)
    rec = await manager.submit("atomalice", [], job(
        variant, DAEMONIZERS[variant].format(t=seconds), walltime=walltime))
    backend, bid, tdir = task_dir(manager, rec)
    await wait_until("the sleeper runs", lambda: len(sleepers(seconds)) == 1)
    [sleeper] = sleepers(seconds)
    assert os.getsid(sleeper) == sleeper  # it left the job's session and process group
    await wait_until("the child is recorded", (tdir / "child.json").exists)
    child = json.loads((tdir / "child.json").read_text())
    group = backend.cgroup_parent / f"{bid}-0"
    assert child["cgroup"] == str(group)
    assert str(sleeper) in (group / "cgroup.procs").read_text().split()
    await wait_until("the main process exits", lambda: not alive(child["pid"]))
    await manager.refresh()
    assert manager.get("atomalice", rec["id"])["state"] == "RUNNING"  # the sleeper is the job
    return rec, sleeper, group


@pytest.mark.parametrize("variant", sorted(DAEMONIZERS))
async def test_cancel_kills_a_daemonized_sleeper(manager, ledger, variant):
    rec, sleeper, group = await start_daemonizer(manager, variant)
    await manager.cancel("atomalice", rec["id"])
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=20)
    assert done["state"] == "CANCELLED"
    assert not alive(sleeper)
    assert not group.exists()  # removed afterwards
    assert 0 < done["cost_micro"] < done["estimate"]["est_cost_micro"]
    assert not ledger.holds


@pytest.mark.parametrize("variant", sorted(DAEMONIZERS))
async def test_walltime_kills_a_daemonized_sleeper(manager, variant):
    rec, sleeper, group = await start_daemonizer(manager, variant, walltime=3)
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=30)
    assert done["state"] == "FAILED" and done["reason"] == "TIMEOUT", done
    assert not alive(sleeper)
    assert not group.exists()
    # metered until the sleeper died at the walltime, not until the main process exited
    assert 3 <= done["runtime_s"] < 3 + GRACE_S + 5
    assert "walltime exceeded" in done["failure"]["log_tail"]


async def test_billing_runs_until_the_last_process_exits(manager, ledger):
    seconds = unique_seconds(3)
    rec = await manager.submit("atomalice", [], job(
        "bill", f"setsid sleep {seconds} & exit 0"))
    backend, bid, tdir = task_dir(manager, rec)
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=30)
    assert done["state"] == "SUCCEEDED" and done["exit_code"] == 0
    assert done["runtime_s"] >= float(seconds)  # not the ~0.01 s of the main process
    rate = done["estimate"]["hourly_rate_micro"]
    assert done["cost_micro"] == actual_cost(done["runtime_s"], 1, rate)
    assert done["cost_micro"] >= actual_cost(float(seconds), 1, rate) > 0
    assert ledger.charged[manager.store.get(rec["id"])["hold_id"]] == done["cost_micro"]
    assert not sleepers(seconds)
    assert not (backend.cgroup_parent / f"{bid}-0").exists()


async def test_background_processes_in_the_session_are_metered_too(manager):
    """Plain ``&`` without setsid: the job also lasts until the background process ends."""
    rec = await manager.submit("atomalice", [], job("bg", "sleep 1.5 & exit 0"))
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=30)
    assert done["state"] == "SUCCEEDED" and done["runtime_s"] >= 1.5


async def test_restart_kills_what_a_vanished_supervisor_left(tmp_path, engine, ledger,
                                                            catalog, manager):
    rec, sleeper, group = await start_daemonizer(manager, "setsid-then-exit")
    backend, bid, tdir = task_dir(manager, rec)
    proc = backend._procs[(bid, 0)]
    proc.kill()  # the supervisor dies while the service is down
    proc.wait()
    m2 = JobManager(engine, {"local": LocalBackend(state_dir=str(tmp_path / "local"))},
                    ledger, catalog=catalog)
    await m2.start()
    [done] = await settle(m2, "atomalice", [rec["id"]], limit=20)
    assert done["state"] == "LOST"
    await wait_until("the orphaned sleeper is killed", lambda: not alive(sleeper), limit=5)
    assert not group.exists()


def test_no_cgroups_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(local_backend, "_warned_no_cgroups", False)
    log = logging.getLogger("test-atom-local")
    with caplog.at_level(logging.WARNING, logger="test-atom-local"):
        local_backend._warn_no_cgroups(log)
        local_backend._warn_no_cgroups(log)
    warnings = [r for r in caplog.records if "process group" in r.getMessage()]
    assert len(warnings) == 1


async def test_process_group_fallback_still_kills_background_jobs(tmp_path, engine, ledger,
                                                                  catalog, unix_users):
    """use_cgroups=False: today's behaviour, the job's process group is killed."""
    backend = LocalBackend(state_dir=str(tmp_path / "local"), use_cgroups=False)
    assert backend.cgroup_parent is None
    manager = JobManager(engine, {"local": backend}, ledger, catalog=catalog)
    seconds = unique_seconds(300)
    rec = await manager.submit("atomalice", [], job("fb", f"sleep {seconds} & exit 0"))
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=20)
    assert done["state"] == "SUCCEEDED"
    # killed with the job's process group when the main process exited
    await wait_until("the background sleeper is killed", lambda: not sleepers(seconds), limit=5)
