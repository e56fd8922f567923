"""The AWS Batch backend against moto's standalone server (unmodified boto3)."""

from __future__ import annotations

import os
import subprocess
import time

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from jupyter_ext.atom.backends.base import JobRef
from jupyter_ext.atom.backends.batch import BatchBackend, call_with_backoff, job_status
from jupyter_ext.atom.batch_infra import ensure_dev_queues
from jupyter_ext.atom.errors import JobNotFound, SpecError
from jupyter_ext.atom.manager import JobManager
from tests.atom.helpers import settle
from tests.support import moto as moto_support

pytestmark = pytest.mark.aws


def _configure(endpoint: str) -> dict[str, str]:
    r = requests.post(f"{endpoint}/moto-api/config", json={"batch": {"use_docker": False}},
                      timeout=10)
    r.raise_for_status()
    env = moto_support.aws_env(endpoint)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return ensure_dev_queues(endpoint_url=endpoint)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def batch_queues(moto_endpoint):
    return _configure(moto_endpoint)


@pytest.fixture(scope="module")
def failing_endpoint():
    """A second moto server whose Batch jobs fail (MOTO_SIMPLE_BATCH_FAIL_AFTER=0)."""
    old = os.environ.get("MOTO_SIMPLE_BATCH_FAIL_AFTER")
    os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = "0"
    try:
        with moto_support.moto_server() as url:
            if old is None:
                os.environ.pop("MOTO_SIMPLE_BATCH_FAIL_AFTER")
            yield url, _configure(url)
    finally:
        if old is not None:
            os.environ["MOTO_SIMPLE_BATCH_FAIL_AFTER"] = old
        else:
            os.environ.pop("MOTO_SIMPLE_BATCH_FAIL_AFTER", None)


@pytest.fixture
def manager(aws_env, batch_queues, engine, ledger, catalog):
    backend = BatchBackend(queues=batch_queues)
    return JobManager(engine, {"batch": backend}, ledger, catalog=catalog)


def describe(job_id: str) -> dict:
    return boto3.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]


def job(name="t", **kw):
    return {"name": name, "command": ["true"], "walltime": 600, **kw}


def run_container_command(cmd: list[str], env: dict[str, str]) -> str:
    """Run a container command argv here (no shell of ours), as the container would."""
    return subprocess.run(cmd, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, check=True).stdout


def bid(manager, rec):
    return manager.store.get(rec["id"])["backend_id"]


async def test_definitions_are_registered_once_per_app_and_arch(manager, batch_queues):
    backend = manager.backends["batch"]
    a = await manager.submit("alice", ["lab"], job("a", app="geos-chem-classic", vcpus=4,
                                                  memory="8Gi"))
    await manager.submit("alice", ["lab"], job("b", app="geos-chem-classic", vcpus=4,
                                              memory="8Gi"))
    await manager.submit("alice", ["lab"], job("c", app="geos-chem-classic", arch="arm64",
                                              vcpus=4, memory="8Gi"))
    assert backend.calls["register_job_definition"] == 2
    d = describe(bid(manager, a))
    defs = boto3.client("batch").describe_job_definitions(jobDefinitions=[d["jobDefinition"]])
    assert defs["jobDefinitions"][0]["containerProperties"]["image"].endswith("14.4.3-zen3")
    fresh = BatchBackend(queues=batch_queues)  # after a restart: found, not registered again
    m2 = JobManager(manager.store.engine, {"batch": fresh}, manager.ledger, catalog=manager.catalog)
    await m2.submit("alice", ["lab"], job("d", app="geos-chem-classic", vcpus=4, memory="8Gi"))
    assert fresh.calls["register_job_definition"] == 0
    assert fresh.calls["describe_job_definitions"] == 1


async def test_queue_by_spot_tags_and_overrides(manager):
    rec = await manager.submit("alice", ["lab"], job(
        "tagged", spot=True, command=["echo", "$(touch /tmp/x)"], env={"A": "1"},
        tags={"project": "aq-2026"}, vcpus=2, memory="3Gi"))
    d = describe(bid(manager, rec))
    assert d["jobQueue"].endswith("/lens-spot")
    assert d["tags"]["lens:user"] == "alice" and d["tags"]["lens:group"] == "lab"
    assert d["tags"]["lens:job"] == rec["id"] and d["tags"]["lens:project"] == "lab"
    assert d["tags"]["project"] == "aq-2026"  # a user tag never overrides lens:project
    assert d["container"]["command"] == ["echo", "$(touch /tmp/x)"]  # literal argv
    env = {e["name"]: e["value"] for e in d["container"]["environment"]}
    assert env["A"] == "1" and env["LENS_JOB_ID"] == rec["id"]
    on_demand = await manager.submit("alice", ["lab"], job("od"))
    assert describe(bid(manager, on_demand))["jobQueue"].endswith("/lens-ondemand")


async def test_array_of_100_with_parameters(manager):
    backend = manager.backends["batch"]
    rec = await manager.submit("alice", [], job(
        "ens", command=["sh", "-c", 'echo "$LENS_ARRAY_INDEX $P"'],
        array={"size": 100, "params": [{"P": f"v{i}"} for i in range(100)]}))
    d = describe(bid(manager, rec))
    assert d["arrayProperties"]["size"] == 100
    [done] = await settle(manager, "alice", [rec["id"]])
    assert done["state"] == "SUCCEEDED" and done["counts"] == {"SUCCEEDED": 100}
    assert backend.calls["list_jobs"] == 1  # children listed once, at the end
    # the container command really gives each member its parameters (run it here)
    cmd = describe(f"{bid(manager, rec)}:0")["container"]["command"]
    for i in (0, 42, 99):
        out = run_container_command(cmd, {"AWS_BATCH_JOB_ARRAY_INDEX": str(i)})
        assert out == f"{i} v{i}\n"


async def test_chain_of_three(manager):
    a = await manager.submit("alice", [], job("wrf"))
    b = await manager.submit("alice", [], job("emis", depends_on=[a["id"]]))
    c = await manager.submit("alice", [], job("cmaq", depends_on=[b["id"]]))
    assert describe(bid(manager, c))["dependsOn"] == [{"jobId": bid(manager, b)}]
    recs = await settle(manager, "alice", [a["id"], b["id"], c["id"]])
    assert [r["state"] for r in recs] == ["SUCCEEDED"] * 3
    with pytest.raises(SpecError, match="afterok"):
        await manager.submit("alice", [], job("x", depends_on=[f"afterany:{a['id']}"]))


async def test_multinode_uses_node_overrides(manager):
    rec = await manager.submit("alice", [], job("gchp", app="gchp", nodes=4, vcpus=48,
                                                memory="96Gi", walltime="01:00:00"))
    d = describe(bid(manager, rec))
    assert d["nodeProperties"]["nodeRangeProperties"][0]["container"]["image"].startswith(
        "public.ecr.aws/lens-atom/gchp:14.4.3-zen3")
    assert rec["estimate"]["nodes"] == 4
    [done] = await settle(manager, "alice", [rec["id"]])
    assert done["state"] == "SUCCEEDED"


async def test_cancel_reaches_batch(manager):
    rec = await manager.submit("alice", [], job("c"))
    out = await manager.cancel("alice", rec["id"])
    # moto's Batch without Docker finishes jobs at submission, so the job has already
    # succeeded; the terminate request still reached Batch with our reason.
    assert describe(bid(manager, rec))["statusReason"].startswith("lens: cancelled")
    assert out["state"] in ("SUCCEEDED", "CANCELLED")
    assert manager.backends["batch"].calls["terminate_job"] == 1


async def test_failure_reports_log_tail_from_cloudwatch(failing_endpoint, engine, ledger,
                                                        catalog, monkeypatch):
    url, queues = failing_endpoint
    for k, v in moto_support.aws_env(url).items():
        monkeypatch.setenv(k, v)
    manager = JobManager(engine, {"batch": BatchBackend(queues=queues, endpoint_url=url)},
                         ledger, catalog=catalog)
    rec = await manager.submit("alice", [], job("boom", command=["sh", "-c", "exit 3"]))
    d = describe(bid(manager, rec))
    # play the container's awslogs driver: its output lands in the job's log stream
    logs = boto3.client("logs")
    stream = d["container"]["logStreamName"]
    try:
        logs.create_log_group(logGroupName="/aws/batch/job")
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": f"line {i}"} for i in range(1, 41)])
    [done] = await settle(manager, "alice", [rec["id"]])
    assert done["state"] == "FAILED"
    tail = done["failure"]["log_tail"]
    assert tail.splitlines()[-1] == "line 40" and len(tail.splitlines()) == 20
    assert "exit_code" in done["failure"]  # moto reports no container exit code


async def test_status_batches_100_ids_per_describe(manager):
    backend = manager.backends["batch"]
    rec = await manager.submit("alice", [], job("one"))
    refs = [JobRef(bid(manager, rec), rec["id"], "alice")] * 250
    before = backend.calls["describe_jobs"]
    await backend.status(refs)
    assert backend.calls["describe_jobs"] - before == 3


async def test_other_user_is_denied(manager):
    rec = await manager.submit("alice", [], job())
    with pytest.raises(JobNotFound):
        manager.get("bob", rec["id"])
    with pytest.raises(JobNotFound):
        await manager.cancel("bob", rec["id"])
    with pytest.raises(JobNotFound):
        await manager.logs("bob", rec["id"])


def test_backoff_is_jittered_and_bounded():
    attempts, sleeps = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) <= 3:
            raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "DescribeJobs")
        return "ok"

    assert call_with_backoff(flaky, base=0.1, cap=0.3, sleep=sleeps.append,
                             rng=lambda: 0.5) == "ok"
    assert sleeps == [0.05, 0.1, 0.15]  # 0.5 x min(cap, base x 2^n)
    def throttled():
        raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, "DescribeJobs")

    def refused():
        raise ClientError({"Error": {"Code": "ClientException"}}, "SubmitJob")

    sleeps.clear()
    with pytest.raises(ClientError):
        call_with_backoff(throttled, retries=2, sleep=sleeps.append)
    assert len(sleeps) == 2 and all(0 <= s <= 0.2 for s in sleeps)
    sleeps.clear()
    with pytest.raises(ClientError):  # other errors are not retried
        call_with_backoff(refused, sleep=sleeps.append)
    assert sleeps == []


def test_status_mapping_of_describe_entries():
    st = job_status({"jobId": "a", "status": "FAILED", "statusReason": "Essential container exited",
                     "startedAt": 1_000_000, "stoppedAt": 1_010_000,
                     "container": {"exitCode": 3}})
    assert (st.state, st.exit_code, st.task_seconds) == ("FAILED", 3, 10.0)
    st = job_status({"jobId": "b", "status": "FAILED", "statusReason": "lens: cancelled by the user"})
    assert st.state == "CANCELLED"
    st = job_status({"jobId": "c", "status": "RUNNING", "arrayProperties": {
        "statusSummary": {"RUNNING": 2, "SUCCEEDED": 3, "RUNNABLE": 1}}})
    assert st.counts == {"RUNNING": 2, "SUCCEEDED": 3, "PENDING": 1}


async def test_refresh_makes_one_status_call_per_backend(aws_env, batch_queues, engine, ledger,
                                                         catalog, shared_dir, unix_users):
    from jupyter_ext.atom.backends.local import LocalBackend

    local = LocalBackend(state_dir=shared_dir + "/l")
    batch = BatchBackend(queues=batch_queues)
    manager = JobManager(engine, {"local": local, "batch": batch}, ledger, catalog=catalog)
    for i in range(5):
        await manager.submit("atomalice", [], job(f"l{i}", command=["sleep", "5"], backend="local"))
        await manager.submit("atomalice", [], job(f"b{i}", backend="batch"))
    local.calls.clear()
    batch.calls.clear()
    counts = await manager.refresh()
    assert counts == {"local": 5, "batch": 5}
    assert local.calls["status"] == 1 and dict(batch.calls) == {"describe_jobs": 1}
    for rec in manager.list("atomalice"):
        await manager.cancel("atomalice", rec["id"])


def test_submit_request_shapes(catalog):
    from jupyter_ext.atom.backends.base import Submission
    from jupyter_ext.atom.backends.batch import submit_kwargs
    from jupyter_ext.atom.spec import parse_spec

    mpi = parse_spec({"name": "gchp.c90", "app": "gchp", "nodes": 4, "walltime": 30}, catalog)
    kw = submit_kwargs(Submission("j-1", "u", (), mpi, "img", (("abc", "afterok"),),
                                  {"lens:user": "u"}, {"A": "1"}), "q", "arn:def")
    assert "containerOverrides" not in kw and kw["jobName"] == "gchp_c90"
    node = kw["nodeOverrides"]
    assert node["numNodes"] == 4 and node["nodePropertyOverrides"][0]["targetNodes"] == "0:"
    assert node["nodePropertyOverrides"][0]["containerOverrides"]["command"] == ["mpirun", "gchp"]
    assert kw["dependsOn"] == [{"jobId": "abc"}] and kw["timeout"] == {"attemptDurationSeconds": 60}
    script = parse_spec({"name": "s", "script": "echo $HOME\n", "array": 5}, catalog)
    kw = submit_kwargs(Submission("j-2", "u", (), script, None), "q", "arn:def")
    cmd = kw["containerOverrides"]["command"]
    assert kw["arrayProperties"] == {"size": 5} and cmd[:2] == ["/bin/sh", "-c"]
    assert cmd[2].endswith("echo $HOME\n") and cmd[3] == "lens-job"
