"""Session fixtures: one real JupyterHub + one real lens-configured gateway (as root,
clusters run as throwaway unix accounts jupyter-<name>), shared by the Dask tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import boto3

# Import hypothesis's internals now, before dask's client threads run: Debian's
# Python 3.11.2 can fail compiling (assertion-rewriting) a module while those
# threads run ("AST constructor recursion depth mismatch"), which hypothesis's
# plugin otherwise does at session end.
import hypothesis.internal.observability  # noqa: F401
import pytest

from jupyter_ext.kernel import dask_client_fix as client_fix
from tests.conftest import require
from tests.dask import support
from tests.support import moto as moto_support

SCRATCH_BUCKET = "lens-dask-scratch"

client_fix.install()

TEST_LIMITS = """
c.GatewaySettings.user_max_clusters = 2
c.GatewaySettings.user_max_cores = 6
c.ClusterConfig.cluster_max_cores = 3
c.GatewaySettings.user_max_memory_gib = 8
c.ClusterConfig.cluster_max_memory = 6 * 2**30
c.GatewaySettings.default_worker_memory_gib = 1
c.GatewaySettings.min_idle_timeout_minutes = 0.02
c.ClusterConfig.scheduler_memory = "0.5 G"
"""


class Stack:
    pass


@pytest.fixture(scope="session")
def dask_stack(moto_endpoint):
    require(support.have_root(), "the Dask gateway tests run clusters as unix users: need root + useradd")
    tag = f"ld{os.getpid() % 100000}"
    users = {"a": f"{tag}a", "b": f"{tag}b", "c": f"{tag}c"}
    state = tempfile.mkdtemp(prefix="lens-dask-")
    os.chmod(state, 0o755)
    s = Stack()
    s.state = state
    with support.unix_users([f"jupyter-{u}" for u in users.values()]), support.BudgetServer() as budget:
        budget.refused.add(users["c"])
        gw = support.GatewayProc(os.path.join(state, "gateway"), extra_config=TEST_LIMITS)
        hub = support.Hub(os.path.join(state, "hub"), gw.port).start()
        try:
            aws = moto_support.aws_env(moto_endpoint)
            boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                         aws_access_key_id="testing", aws_secret_access_key="testing",
                         ).create_bucket(Bucket=SCRATCH_BUCKET)
            gw.env = {
                "JUPYTERHUB_API_TOKEN": hub.gateway_token,
                "JUPYTERHUB_API_URL": hub.api_url,
                "LENS_SERVICE_URL": budget.url,
                "LENS_SCRATCH_BUCKET": SCRATCH_BUCKET,
                "LENS_DATA_BUCKET": SCRATCH_BUCKET,
                **aws,
                # scratch credentials for workers, under the names the gateway forwards
                **{f"LENS_WORKER_{k}": v for k, v in aws.items() if k.startswith("AWS_") and "KEY" in k},
                # the gateway's own credentials, which must never reach user processes
                "AWS_ACCESS_KEY_ID": "lens-gateway-own-key",
                "AWS_SECRET_ACCESS_KEY": "lens-gateway-own-secret",
            }
            s.aws = aws
            gw.start()
            for u in users.values():
                hub.create_user(u)
            s.hub, s.gateway, s.budget, s.users = hub, gw, budget, users
            s.tokens = {k: hub.token(u, [support.SERVICE_SCOPE]) for k, u in users.items()}
            yield s
        finally:
            gw.stop()
            hub.stop()
            if not os.environ.get("LENS_KEEP_TEST_STATE"):
                shutil.rmtree(state, ignore_errors=True)
