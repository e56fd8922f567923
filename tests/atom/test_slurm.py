"""The Slurm backend against a real slurmctld/slurmd (Slurm 22.05)."""

from __future__ import annotations

import asyncio
import os

import pytest

from jupyter_ext.atom.backends.base import JobRef, Submission
from jupyter_ext.atom.backends.slurm import SlurmBackend, decode_exit, parse_squeue
from jupyter_ext.atom.errors import BackendError, JobNotFound, UnknownUser
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.atom.spec import parse_spec
from tests.atom.helpers import settle
from tests.conftest import require

pytestmark = pytest.mark.slurm


@pytest.fixture
def manager(slurm_conf, shared_dir, engine, ledger, catalog, unix_users):
    require(os.geteuid() == 0, "Slurm jobs run as the users through --uid/--gid (root)")
    backend = SlurmBackend(state_dir=shared_dir, slurm_conf=slurm_conf,
                           partition_map={"*": "debug"})
    manager = JobManager(engine, {"slurm": backend}, ledger, catalog=catalog)
    yield manager
    cancel_leftovers(manager, slurm_conf)


def cancel_leftovers(manager, slurm_conf):
    """scancel this test's unfinished jobs (by id), so a failure cannot clog the queue."""
    import subprocess

    ids = [r["backend_id"] for r in manager.store.in_states(["PENDING", "RUNNING"])
           if r.get("backend_id")]
    if ids:
        subprocess.run(["scancel", *ids], env={**os.environ, "SLURM_CONF": slurm_conf},
                       capture_output=True)


def job(name="t", **kw):
    return {"name": name, "command": ["true"], "walltime": 120, "memory": "64Mi", **kw}


def test_pure_helpers():
    assert decode_exit(768) == 3 and decode_exit(9) == 137 and decode_exit(0) == 0
    rows = parse_squeue(
        "5471|5471|1|PENDING|JobArrayTaskLimit|N/A|N/A|0|\n"
        "5472|5471|0|RUNNING|None|2026-11-24T02:25:53|NONE|0|\n"
        "3461|3461|N/A|FAILED|NonZeroExitCode|2026-11-24T02:21:28|2026-11-24T02:21:29|768|\n")
    assert rows["5471"][1][:3] == ["PENDING", "JobArrayTaskLimit", 0]
    assert rows["5471"][0][0] == "RUNNING" and rows["5471"][0][3] and rows["5471"][0][4] is None
    assert rows["3461"][0][:3] == ["FAILED", "NonZeroExitCode", 3]
    assert rows["3461"][0][4] - rows["3461"][0][3] == 1


def test_sbatch_argv_is_a_list_with_all_options(tmp_path):
    from jupyter_ext.atom.backends.slurm import sbatch_argv
    from jupyter_ext.atom.usermap import UnixAccount

    spec = parse_spec({"name": "ens", "command": ["x"], "array": {"size": 10, "parallel": 3},
                       "walltime": "00:01:30", "nodes": 1, "vcpus": 2, "memory": "1Gi"})
    sub = Submission("j-000000000001", "alice", ("lab",), spec, depends_on=(("11", "afterok"),
                                                                           ("12", "afterany")))
    argv = sbatch_argv(sub, UnixAccount("jupyter-alice", 1234, 1235, "/h", ()), sbatch="sbatch",
                       outdir="/o", script_path="/s.sh", partition="debug", account="lab",
                       qos="normal", throttle=256)
    assert argv[:2] == ["sbatch", "--parsable"] and argv[-1] == "/s.sh"
    for opt in ("--array=0-9%3", "--dependency=afterok:11,afterany:12", "--time=2",
                "--nodes=1", "--cpus-per-task=2", "--mem=1024M", "--partition=debug",
                "--account=lab", "--qos=normal", "--uid=1234", "--gid=1235", "--job-name=ens"):
        assert opt in argv


async def test_runs_as_user_with_env_quoted(manager):
    rec = await manager.submit("atomalice", ["lab"], job(
        command=["sh", "-c", 'id -un; printf "%s|" "$V"'], env={"V": "a b'c\"d"}))
    [done] = await settle(manager, "atomalice", [rec["id"]])
    assert done["state"] == "SUCCEEDED", done
    log = await manager.logs("atomalice", rec["id"])
    assert log.splitlines()[0] == "jupyter-atomalice"
    assert manager.store.get(rec["id"])["backend_id"] in await manager.backends["slurm"].list()
    assert "a b'c\"d|" in log


async def test_array_of_100_one_squeue_per_refresh(manager):
    backend = manager.backends["slurm"]
    rec = await manager.submit("atomalice", [], job(
        "ens", command=["sh", "-c", 'echo "$LENS_ARRAY_INDEX $P"'],
        array={"size": 100, "params": [{"P": f"v{i}"} for i in range(100)]}))
    before = backend.calls["squeue"]
    await manager.refresh()
    assert backend.calls["squeue"] == before + 1
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=180, interval=0.5)
    assert done["state"] == "SUCCEEDED" and done["counts"] == {"SUCCEEDED": 100}, done
    for i in (0, 57, 99):
        assert (await manager.logs("atomalice", rec["id"], index=i)).strip() == f"{i} v{i}"


async def test_chain_of_three_and_failure_with_log_tail(manager):
    a = await manager.submit("atomalice", [], job("a", command=["sleep", "1"]))
    b = await manager.submit("atomalice", [], job("b", depends_on=[a["id"]], command=[
        "sh", "-c", "for i in $(seq 1 40); do echo line $i; done; echo oops >&2; exit 3"]))
    c = await manager.submit("atomalice", [], job("c", depends_on=[f"afterany:{b['id']}"]))
    d = await manager.submit("atomalice", [], job("d", depends_on=[b["id"]]))
    ra, rb, rc, rd = await settle(manager, "atomalice", [x["id"] for x in (a, b, c, d)],
                                  limit=120, interval=0.5)
    assert ra["state"] == "SUCCEEDED" and rc["state"] == "SUCCEEDED"
    assert rb["state"] == "FAILED" and rb["exit_code"] == 3
    assert "line 40" in rb["failure"]["log_tail"] and "oops" in rb["failure"]["log_tail"]
    assert "line 1\n" not in rb["failure"]["log_tail"]
    assert rb["started_at"] >= ra["ended_at"] and rc["started_at"] >= rb["ended_at"]
    assert rd["state"] == "CANCELLED" and rd["reason"] == "DependencyNeverSatisfied"


async def test_cancel(manager, ledger):
    rec = await manager.submit("atomalice", [], job("long", command=["sleep", "300"]))
    for _ in range(60):
        await manager.refresh()
        if manager.get("atomalice", rec["id"])["state"] == "RUNNING":
            break
        await asyncio.sleep(0.25)
    await manager.cancel("atomalice", rec["id"])
    [done] = await settle(manager, "atomalice", [rec["id"]], limit=60, interval=0.5)
    assert done["state"] == "CANCELLED"
    assert not ledger.holds and done["cost_micro"] < done["estimate"]["est_cost_micro"]


async def test_other_user_is_denied(manager):
    rec = await manager.submit("atomalice", [], job(command=["sleep", "2"]))
    for call in (lambda: manager.cancel("atombob", rec["id"]),
                 lambda: manager.logs("atombob", rec["id"])):
        with pytest.raises(JobNotFound):
            await call()
    with pytest.raises(JobNotFound):
        manager.get("atombob", rec["id"])
    await manager.cancel("atomalice", rec["id"])


async def test_jobs_that_left_squeue_come_from_sacct(slurm_conf, shared_dir, unix_users):
    """A plain job unknown to squeue (aged out) is looked up in the jobcomp log."""
    backend = SlurmBackend(state_dir=shared_dir, slurm_conf=slurm_conf)
    ref = JobRef("999999", "j-aaaaaaaaaaaa", "atomalice")
    st = (await backend.status([ref]))["999999"]
    assert backend.calls["squeue"] == 1 and backend.calls["sacct"] == 1
    assert st.state == "LOST"


async def test_logs_never_follow_a_users_symlink(manager, unix_users):
    """The output directory belongs to the user; a symlink planted there must not make
    the service read a file the user cannot."""
    rec = await manager.submit("atomalice", [], job("s", command=["true"]))
    await settle(manager, "atomalice", [rec["id"]], limit=60, interval=0.5)
    outdir = manager.backends["slurm"].root / rec["id"]
    bid = manager.store.get(rec["id"])["backend_id"]
    out = outdir / f"slurm-{bid}.out"
    out.unlink(missing_ok=True)
    os.symlink("/etc/shadow", out)
    with pytest.raises(BackendError, match="refusing to read"):
        await manager.logs("atomalice", rec["id"])
    out.unlink()
    secret = outdir / "root-owned"
    secret.write_text("secret")  # same directory, owned by root, not by the user
    os.link(secret, out)
    with pytest.raises(BackendError, match="not the job's own output file"):
        await manager.logs("atomalice", rec["id"])


async def test_unknown_unix_account_fails_clearly(manager, ledger):
    with pytest.raises(UnknownUser, match="jupyter-nosuchuser"):
        await manager.submit("nosuchuser", [], job())
    assert not ledger.holds


async def test_restart_readopts_slurm_jobs(manager, slurm_conf):
    rec = await manager.submit("atomalice", [], job("keep", command=["sleep", "1"]))
    old = manager.backends["slurm"]
    fresh = SlurmBackend(state_dir=str(old.root), slurm_conf=slurm_conf)
    m2 = JobManager(manager.store.engine, {"slurm": fresh}, manager.ledger,
                    catalog=manager.catalog)
    await m2.start()
    [done] = await settle(m2, "atomalice", [rec["id"]], limit=60, interval=0.5)
    assert done["state"] == "SUCCEEDED" and done["cost_micro"] is not None


async def test_sacct_jobcomp_reports_finished_jobs(manager):
    """The sacct -c path (used once a job has left squeue) on a real finished job."""
    rec = await manager.submit("atomalice", [], job("x3", command=["sh", "-c", "exit 3"]))
    await settle(manager, "atomalice", [rec["id"]], limit=60, interval=0.5)
    backend = manager.backends["slurm"]
    bid = manager.store.get(rec["id"])["backend_id"]
    rows = {}
    for _ in range(20):  # slurmctld appends to the jobcomp log right after the job ends
        rows = await backend._sacct([bid])
        if bid in rows:
            break
        await asyncio.sleep(0.25)
    state, _, exit_code, start, end = rows[bid]
    assert (state, exit_code) == ("FAILED", 3) and start and end >= start
