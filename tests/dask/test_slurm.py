"""HPC mode: dask-gateway's SlurmBackend (lens subclass) against the local Slurm.

Jobs are submitted through dask-gateway-jobqueue-launcher as the user's unix
account (runuser, since the gateway runs as root and this machine has no sudo),
so the scheduler and workers run as jupyter-NAME inside Slurm jobs."""

from __future__ import annotations

import gc
import os
import pwd
import shutil
import subprocess

import pytest
from dask_gateway import Gateway
from dask_gateway.auth import JupyterHubAuth

from tests.conftest import require
from tests.dask import support
from tests.dask.conftest import TEST_LIMITS

pytestmark = pytest.mark.slurm


def _answers(conf: str) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


@pytest.fixture(scope="module")
def slurm_conf():
    require(shutil.which("sbatch") is not None, "slurm-wlm is not installed")
    conf = os.environ.get("SLURM_CONF", "")
    if conf and _answers(conf):
        return conf
    state = os.environ.get("LENS_STATE_DIR") or "/tmp/slurmtest"
    out = subprocess.run(["bash", os.path.join(support.ROOT, "scripts", "slurm-up.sh"), state],
                         capture_output=True, text=True, timeout=120)
    require(out.returncode == 0, f"slurm-up.sh failed: {out.stderr[-500:]}")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def slurm_gateway(dask_stack, slurm_conf):
    s = dask_stack
    gw = support.GatewayProc(
        os.path.join(s.state, "gateway-slurm"),
        extra_config=TEST_LIMITS,
        env={
            "LENS_GATEWAY_BACKEND": "slurm",
            "SLURM_CONF": slurm_conf,
            "JUPYTERHUB_API_TOKEN": s.hub.gateway_token,
            "JUPYTERHUB_API_URL": s.hub.api_url,
            "LENS_SERVICE_URL": s.budget.url,
        },
    )
    gw.start()
    yield gw
    gw.stop()


def squeue(conf: str, job_ids: list[str]) -> list[tuple[str, str, str]]:
    out = subprocess.run(
        ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %u %T"],
        env={**os.environ, "SLURM_CONF": conf}, capture_output=True, text=True, timeout=10,
    )
    return [tuple(line.split()) for line in out.stdout.splitlines()]


def test_slurm_cluster_runs_as_the_user(dask_stack, slurm_gateway, slurm_conf):
    s = dask_stack
    unix = f"jupyter-{s.users['a']}"
    gw = Gateway(address=slurm_gateway.url, proxy_address=slurm_gateway.proxy_address,
                 auth=JupyterHubAuth(api_token=s.tokens["a"]))
    cluster = gw.new_cluster(worker_memory=0.5)
    try:
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=90)
        assert client.submit(sum, [1, 2, 3]).result() == 6
        assert set(client.run(os.getuid).values()) == {pwd.getpwnam(unix).pw_uid}
        jobs = subprocess.run(
            ["squeue", "-h", "-u", unix, "-o", "%i %u %T %j"],
            env={**os.environ, "SLURM_CONF": slurm_conf}, capture_output=True, text=True, timeout=10,
        ).stdout.split("\n")
        running = [j.split() for j in jobs if j.strip()]
        assert len(running) >= 2  # scheduler + worker jobs, owned by the user
        assert all(r[1] == unix and r[3] == "dask-gateway" for r in running)
        staging = os.path.join(pwd.getpwnam(unix).pw_dir, ".dask-gateway", cluster.name)
        assert os.stat(staging).st_uid == pwd.getpwnam(unix).pw_uid
        client.close()
    finally:
        cluster.shutdown()
        gw.close()
        gc.collect()
    ids = [r[0] for r in running]
    for _ in range(40):
        if not [r for r in squeue(slurm_conf, ids) if r[2] in ("RUNNING", "PENDING")]:
            break
        import time
        time.sleep(0.5)
    assert not [r for r in squeue(slurm_conf, ids) if r[2] in ("RUNNING", "PENDING")]
    assert (os.stat("/").st_uid, os.stat("/").st_gid) == (0, 0)
