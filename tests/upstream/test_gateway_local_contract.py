"""dask-gateway-server's local-backend contract, on UnsafeLocalBackend and on lens's backend.

Restates upstream's ``tests/test_local_backend.py`` (not shipped in the
sdist): an in-process gateway with the backend under test and real scheduler
and worker processes; a cluster starts, is checked, scales up and down, runs a
task and stops. Each test runs on dask-gateway-server's ``UnsafeLocalBackend``
(``flavour="upstream"``) and on lens's ``LensUnsafeLocalBackend``.
``LensLocalBackend`` (clusters as the users' unix accounts) needs root and
accounts: tests/dask runs it in the full stack (see docs/upstream.md).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
import time

import pytest
from traitlets.config import Config

pytestmark = [
    pytest.mark.integration,  # real scheduler and worker processes: run under the shared lock
    pytest.mark.skipif(
        importlib.metadata.version("dask-gateway-server") != "2026.3.0",
        reason="restates dask-gateway-server 2026.3.0's local-backend tests; review for "
        + importlib.metadata.version("dask-gateway-server"),
    ),
]

DASK = os.path.join(os.path.dirname(sys.executable), "dask")


BACKENDS = {
    "upstream": "dask_gateway_server.backends.local.UnsafeLocalBackend",
    "lens": "jupyter_ext.gateway.backend.LensUnsafeLocalBackend",
    "lens-accounts": "jupyter_ext.gateway.backend.LensLocalBackend",  # skipped: conftest.KNOWN_SKIPS
}


@pytest.fixture(params=list(BACKENDS))
def flavour(request):
    return request.param


@pytest.fixture
def gateway_config(flavour, tmp_path, monkeypatch):
    for var in ("LENS_SERVICE_URL", "LENS_SCRATCH_BUCKET", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path / "state"))
    c = Config()
    c.DaskGateway.backend_class = BACKENDS[flavour]
    c.DaskGateway.address = "127.0.0.1:0"
    c.Proxy.address = "127.0.0.1:0"
    c.Proxy.tcp_address = "127.0.0.1:0"
    c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
    c.LocalBackend.clusters_directory = str(tmp_path / "clusters")
    # distributed 2026.8 has no dask-scheduler / dask-worker executables
    c.ClusterConfig.scheduler_cmd = [DASK, "scheduler"]
    c.ClusterConfig.worker_cmd = [DASK, "worker"]
    c.ClusterConfig.scheduler_memory = "1 G"
    c.ClusterConfig.worker_memory = "1 G"
    c.DBBackendBase.cluster_heartbeat_period = 2
    return c


class Running:
    def __init__(self, config: Config):
        self.config = config

    async def __aenter__(self):
        from dask_gateway_server.app import DaskGateway

        self.app = DaskGateway(config=self.config)
        self.app.initialize([])
        await self.app.setup()
        await self.app.backend.proxy._proxy_contacted
        await self.api_routed()
        return self

    async def api_routed(self, within: float = 30.0) -> None:
        """The proxy has contacted the gateway, but its routing table may not hold the
        API route yet (a 404 "Not Found" on the first request under load): poll it."""
        import aiohttp

        url = f"http://{self.app.backend.proxy.address}/api/version"
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
                assert time.monotonic() < deadline, f"{url} never answered 200"
                await asyncio.sleep(0.1)

    async def __aexit__(self, *exc):
        await self.app.cleanup()

    def client(self):
        from dask_gateway import BasicAuth, Gateway

        proxy = self.app.backend.proxy
        return Gateway(
            address=f"http://{proxy.address}",
            proxy_address=f"gateway://{proxy.tcp_address}",
            auth=BasicAuth("alice"),
            asynchronous=True,
        )


async def workers_become(cluster, n: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while len(cluster.scheduler_info.get("workers", {})) != n:
        assert time.monotonic() < deadline, f"never reached {n} workers"
        await asyncio.sleep(0.25)


async def eventually(check, within: float = 20.0):
    deadline = time.monotonic() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_local_cluster_lifecycle(gateway_config):
    async with Running(gateway_config) as g, g.client() as gateway:
        backend = g.app.backend
        async with gateway.new_cluster() as cluster:
            db_cluster = backend.db.get_cluster(cluster.name)
            assert await backend.do_check_clusters([db_cluster]) == [True]
            await cluster.scale(2)
            await workers_become(cluster, 2)
            async with cluster.get_client(set_as_default=False) as client:
                assert await client.submit(lambda x: x + 1, 1) == 2
            await cluster.scale(0)
            await workers_become(cluster, 0)
            db_workers = list(db_cluster.workers.values())

            async def none_alive():
                assert sum(await backend.do_check_workers(db_workers)) == 0

            await eventually(none_alive)
            await backend.do_stop_worker(db_workers[0])  # stopping a stopped worker is a no-op

        async def stopped():
            assert await backend.do_check_clusters([db_cluster]) == [False]

        await eventually(stopped)


async def test_cluster_environment_is_the_configured_environment(gateway_config):
    gateway_config.ClusterConfig.environment = {"LENS_TEST_VAR": "1"}
    async with Running(gateway_config) as g:
        from dask_gateway_server.models import User

        _, config = await g.app.backend.process_cluster_options(User("alice"), {})
        assert config.environment == {"LENS_TEST_VAR": "1"}


async def test_operator_cluster_max_workers_holds(gateway_config):
    gateway_config.ClusterConfig.cluster_max_workers = 1
    async with Running(gateway_config) as g, g.client() as gateway:
        async with gateway.new_cluster() as cluster:
            assert g.app.backend.db.get_cluster(cluster.name).config["cluster_max_workers"] == 1
            await cluster.scale(3)  # clipped to the operator's limit
            await workers_become(cluster, 1)
            await asyncio.sleep(3)
            assert len(cluster.scheduler_info.get("workers", {})) == 1
