"""The local backend for real: processes run as the users' unix accounts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.errors import JobNotFound, UnknownUser
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.costs.ledger import BudgetExceeded
from tests.atom.helpers import group_alive, group_size, settle, wait_until
from tests.conftest import require


@pytest.fixture
def make_manager(tmp_path, engine, ledger, catalog):
    def make(max_concurrency=8, led=None):
        backend = LocalBackend(state_dir=str(tmp_path / "local"), max_concurrency=max_concurrency)
        return JobManager(engine, {"local": backend}, led or ledger, catalog=catalog)
    return make


@pytest.fixture
def manager(make_manager, unix_users):
    return make_manager()


def job(name="t", **kw):
    return {"name": name, "command": ["true"], "walltime": 60, **kw}


async def test_runs_as_the_users_unix_account(manager):
    require(os.geteuid() == 0, "running jobs as other users needs root")
    rec = await manager.submit("atomalice", ["lab"], job(command=["id", "-un"]))
    [done] = await settle(manager, "atomalice", [rec["id"]])
    assert done["state"] == "SUCCEEDED", done
    assert (await manager.logs("atomalice", rec["id"])).strip() == "jupyter-atomalice"


async def test_unknown_unix_account_fails_clearly(manager, ledger):
    require(os.geteuid() == 0, "the user mapping applies as root")
    with pytest.raises(UnknownUser, match="jupyter-nosuchuser"):
        await manager.submit("nosuchuser", [], job())
    assert not ledger.holds and ledger.released  # the hold went back
    [rec] = manager.list("nosuchuser")
    assert rec["state"] == "REJECTED" and "no unix account" in rec["reason"]


async def test_array_of_100_with_parameters(manager, ledger):
    params = [{"P": f"v{i}"} for i in range(100)]
    rec = await manager.submit("atomalice", ["lab"], job(
        "ens", command=["sh", "-c", 'echo "$LENS_ARRAY_INDEX $P"'],
        array={"size": 100, "params": params}))
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=120)
    assert done["state"] == "SUCCEEDED" and done["counts"] == {"SUCCEEDED": 100}
    for i in (0, 42, 99):
        assert (await manager.logs("atomalice", rec["id"], index=i)).strip() == f"{i} v{i}"
    assert ledger.charged[rec_hold(manager, rec)] == done["cost_micro"]
    assert 0 < done["cost_micro"] <= done["estimate"]["est_cost_micro"]


def rec_hold(manager, rec):
    return manager.store.get(rec["id"])["hold_id"]


async def test_dependency_chain_of_three(manager):
    a = await manager.submit("atomalice", [], job("a", command=["sleep", "0.3"]))
    b = await manager.submit("atomalice", [], job("b", command=["sleep", "0.3"],
                                                   depends_on=[a["id"]]))
    c = await manager.submit("atomalice", [], job("c", command=["true"],
                                                   depends_on=[f"afterany:{b['id']}"]))
    ra, rb, rc = await settle(manager, "atomalice", [a["id"], b["id"], c["id"]])
    assert [r["state"] for r in (ra, rb, rc)] == ["SUCCEEDED"] * 3
    assert rb["started_at"] >= ra["ended_at"] - 0.05
    assert rc["started_at"] >= rb["ended_at"] - 0.05


async def test_afterok_on_failure_never_runs_but_afterany_does(manager):
    bad = await manager.submit("atomalice", [], job("bad", command=["false"]))
    ok = await manager.submit("atomalice", [], job("ok", depends_on=[bad["id"]]))
    anyway = await manager.submit("atomalice", [], job("any", depends_on=[f"afterany:{bad['id']}"]))
    rbad, rok, rany = await settle(manager, "atomalice", [bad["id"], ok["id"], anyway["id"]])
    assert rbad["state"] == "FAILED" and rbad["exit_code"] == 1
    assert rok["state"] == "CANCELLED" and "DependencyNeverSatisfied" in rok["reason"]
    assert rok["runtime_s"] == 0 and rok["cost_micro"] == 0
    assert rany["state"] == "SUCCEEDED"


async def test_failure_reports_exit_code_and_log_tail(manager):
    rec = await manager.submit("atomalice", [], job("boom", command=[
        "sh", "-c", "for i in $(seq 1 50); do echo line $i; done; echo oops >&2; exit 3"]))
    [done] = await settle(manager, "atomalice", [rec["id"]])
    assert done["state"] == "FAILED" and done["exit_code"] == 3
    tail = done["failure"]["log_tail"]
    assert "line 50" in tail and "oops" in tail and "line 1\n" not in tail
    assert done["failure"]["exit_code"] == 3


async def test_cancel_kills_the_process_group(manager, ledger):
    rec = await manager.submit("atomalice", [], job("long", command=[
        "sh", "-c", "sleep 300 & sleep 300; wait"]))
    for _ in range(100):
        await manager.refresh()
        if manager.get("atomalice", rec["id"])["state"] == "RUNNING":
            break
        await asyncio.sleep(0.05)
    backend = manager.backends["local"]
    bid = manager.store.get(rec["id"])["backend_id"]
    child_file = backend.root / bid / "tasks" / "0" / "child.json"
    await wait_until("the job's child is recorded", child_file.exists)
    child = json.loads(child_file.read_text())["pid"]
    # sh, then both sleeps (one in the background) in the job's process group
    await wait_until("both sleeps run", lambda: group_size(child) >= 3)
    await manager.cancel("atomalice", rec["id"])
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=20)
    assert done["state"] == "CANCELLED"
    assert done["cost_micro"] < done["estimate"]["est_cost_micro"]
    assert not group_alive(child)


async def test_walltime_is_enforced(manager):
    rec = await manager.submit("atomalice", [], job("slow", command=["sleep", "30"], walltime=1))
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=20)
    assert done["state"] == "FAILED" and done["reason"] == "TIMEOUT"


async def test_concurrency_limit(make_manager, unix_users):
    manager = make_manager(max_concurrency=2)
    rec = await manager.submit("atomalice", [], job("c", command=["sleep", "0.4"], array=6))
    peak = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await manager.refresh()
        r = manager.get("atomalice", rec["id"])
        peak = max(peak, r["counts"].get("RUNNING", 0))
        if r["state"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.05)
    assert r["state"] == "SUCCEEDED" and peak == 2


async def test_other_users_cannot_see_or_touch_jobs(manager):
    rec = await manager.submit("atomalice", [], job(command=["sleep", "5"]))
    with pytest.raises(JobNotFound):
        manager.get("atombob", rec["id"])
    with pytest.raises(JobNotFound):
        await manager.cancel("atombob", rec["id"])
    with pytest.raises(JobNotFound):
        await manager.logs("atombob", rec["id"])
    with pytest.raises(JobNotFound):  # nor depend on them
        await manager.submit("atombob", [], job(depends_on=[rec["id"]]))
    assert manager.list("atombob") == []
    assert manager.get("atomalice", rec["id"])["state"] in ("PENDING", "RUNNING")
    await manager.cancel("atomalice", rec["id"])


async def test_over_budget_is_refused_with_estimate_and_remaining(make_manager, make_ledger, unix_users):
    led = make_ledger({"user:atomalice": 1000})
    manager = make_manager(led=led)
    with pytest.raises(BudgetExceeded) as err:
        await manager.submit("atomalice", [], job(walltime="01:00:00", vcpus=4))
    assert err.value.remaining_micro == 1000 and err.value.estimate_micro > 1000
    assert manager.list("atomalice") == []


async def test_restart_readopts_running_and_marks_vanished_lost(make_manager, unix_users, ledger):
    m1 = make_manager()
    keep = await m1.submit("atomalice", [], job("keep", command=["sleep", "1.5"]))
    gone = await m1.submit("atomalice", [], job("gone", command=["sleep", "30"]))
    backend = m1.backends["local"]
    for _ in range(100):
        await m1.refresh()
        if all(m1.get("atomalice", j["id"])["state"] == "RUNNING" for j in (keep, gone)):
            break
        await asyncio.sleep(0.05)
    # the service dies; one supervisor is killed outright while it is down
    gone_bid = m1.store.get(gone["id"])["backend_id"]
    pid = backend._procs[(gone_bid, 0)].pid
    tdir = backend.root / gone_bid / "tasks" / "0"
    for _ in range(100):
        if (tdir / "child.json").exists():
            break
        await asyncio.sleep(0.05)
    child = json.loads((tdir / "child.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)
    os.killpg(child, signal.SIGKILL)
    backend._procs[(gone_bid, 0)].wait()
    del m1, backend
    m2 = make_manager()
    summary = await m2.start()
    assert summary["adopted"] >= 1
    rkeep, rgone = await settle(m2, "atomalice", [keep["id"], gone["id"]])
    assert rkeep["state"] == "SUCCEEDED" and rkeep["runtime_s"] >= 1.4
    assert rgone["state"] == "LOST"
    assert not ledger.holds  # both settled with the ledger


async def test_array_parallel_throttle(make_manager, unix_users):
    manager = make_manager(max_concurrency=8)
    rec = await manager.submit("atomalice", [], job(
        "p", command=["sleep", "0.3"], array={"size": 4, "parallel": 1}))
    peak = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await manager.refresh()
        r = manager.get("atomalice", rec["id"])
        peak = max(peak, r["counts"].get("RUNNING", 0))
        if r["state"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.03)
    assert r["state"] == "SUCCEEDED" and peak == 1


async def test_missing_program_fails_with_127_and_a_message(manager):
    rec = await manager.submit("atomalice", [], job("nope", command=["/no/such/program", "x"]))
    [done] = await settle(manager, "atomalice", [rec["id"]])
    assert done["state"] == "FAILED" and done["exit_code"] == 127
    assert "cannot start '/no/such/program'" in done["failure"]["log_tail"]


async def test_cancel_right_after_submit_is_never_lost(manager):
    """Cancelling while the supervisor is still starting must not leave a LOST job."""
    recs = [await manager.submit("atomalice", [], job(f"c{i}", command=["sleep", "30"]))
            for i in range(3)]
    for rec in recs:
        await manager.cancel("atomalice", rec["id"])
    done = await settle(manager, "atomalice", [r["id"] for r in recs], limit=30)
    assert [d["state"] for d in done] == ["CANCELLED"] * 3


async def test_a_big_array_does_not_keep_another_users_job_waiting(make_manager, unix_users):
    """Free slots are shared between users: bob's one job starts within the next free
    slots, not after alice's array drains (first come, first served took about 30 s here)."""
    manager = make_manager(max_concurrency=2)
    big = await manager.submit("atomalice", [], job("big", command=["sleep", "0.5"], array=120))

    def started(rec):
        return rec["array_size"] - rec["counts"].get("PENDING", 0)

    deadline = time.monotonic() + 30
    while (r := manager.get("atomalice", big["id"]))["counts"].get("RUNNING", 0) < 2:
        assert time.monotonic() < deadline, r
        await manager.refresh()
        await asyncio.sleep(0.05)
    before = started(r)
    one = await manager.submit("atombob", [], job("one", command=["sleep", "0.2"]))
    deadline = time.monotonic() + 30
    while (mine := manager.get("atombob", one["id"]))["state"] == "PENDING":
        assert time.monotonic() < deadline, mine
        await manager.refresh()
        await asyncio.sleep(0.02)
    theirs = manager.get("atomalice", big["id"])
    # between bob's submit and his start, at most the two slots alice held were freed;
    # the refresh that saw bob start may already have refilled one more for alice
    assert started(theirs) <= before + 2, (before, theirs["counts"])
    assert theirs["counts"].get("PENDING", 0) > 100
    await manager.cancel("atomalice", big["id"])
    [done] = await settle(manager, "atomalice", [big["id"]], limit=30)
    assert done["state"] == "CANCELLED" and done["failure"]["reason"] == "CANCELLED"


async def test_refresh_of_a_10000_array_reads_only_the_running_members(
        tmp_path, make_manager, unix_users):
    """The scheduler's tally: a status call costs the running members, not the array's
    size, and a cancelled array is re-adopted from its folder after a restart."""
    manager = make_manager(max_concurrency=2)
    rec = await manager.submit("atomalice", [], job("huge", command=["sleep", "30"], array=10000))
    backend = manager.backends["local"]
    bid = manager.store.get(rec["id"])["backend_id"]
    await manager.refresh()
    assert manager.get("atomalice", rec["id"])["counts"] == {"RUNNING": 2, "PENDING": 9998}
    assert len(list((backend.root / bid / "tasks").iterdir())) == 2  # nothing per waiting member
    t0 = time.perf_counter()
    for _ in range(20):
        await manager.refresh()
    # reading three files per waiting member (as before) took about 0.3 s a refresh here
    assert time.perf_counter() - t0 < 2.0
    await manager.cancel("atomalice", rec["id"])
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=30)
    assert done["state"] == "CANCELLED" and done["counts"] == {"CANCELLED": 10000}
    assert done["failure"]["index"] == 0
    again = LocalBackend(state_dir=str(tmp_path / "local"))
    [st] = (await again.status([manager._ref(manager.store.get(rec["id"]))])).values()
    assert st.state == "CANCELLED" and st.counts == {"CANCELLED": 10000}


async def test_users_take_turns_when_each_step_frees_one_slot(make_manager, unix_users):
    """One slot and quick tasks: each refresh starts one task, and the users take turns
    (the one served longest ago first), instead of the oldest array winning every step."""
    manager = make_manager(max_concurrency=1)
    users = ("atomalice", "atombob")
    recs = [await manager.submit(u, [], job("q", command=["true"], array=50)) for u in users]
    backend = manager.backends["local"]
    bids = [manager.store.get(r["id"])["backend_id"] for r in recs]

    def started():
        return [len(list((backend.root / b / "tasks").iterdir())) for b in bids]

    deadline = time.monotonic() + 60
    while min(started()) < 3:
        assert time.monotonic() < deadline, started()
        await manager.refresh()
        await asyncio.sleep(0.1)
    assert abs(started()[0] - started()[1]) <= 1, started()
    for u, r in zip(users, recs, strict=True):
        await manager.cancel(u, r["id"])
        await settle(manager, u, [r["id"]], limit=30)
