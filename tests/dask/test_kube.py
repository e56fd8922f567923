"""LensKubeBackend without a Kubernetes cluster: the real backend class, its real
option processing and limits, the informer cache filled with dask-gateway's own
``models.Cluster`` records (what ``KubeBackend.sync_cluster`` stores), the budget
check against a real HTTP server, and the lens routes on a real aiohttp server.
What needs an API server (creating the DaskCluster resource, the informer, the
controller) is not exercised here; see docs/dask.md."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.models import Cluster, ClusterStatus, User
from traitlets.config import Config

from jupyter_ext.gateway.kube import LensKubeBackend
from jupyter_ext.gateway.options import make_options
from jupyter_ext.gateway.settings import GIB, GatewaySettings
from tests.dask.support import BudgetServer

TOKEN = "gateway-service-token"


def make_backend(budget_url: str = "", **extra) -> LensKubeBackend:
    c = Config()
    c.GatewaySettings.kubernetes = True
    c.GatewaySettings.user_max_clusters = 2
    c.GatewaySettings.user_max_cores = 6
    c.GatewaySettings.cluster_max_cores = 4
    c.GatewaySettings.user_max_memory_gib = 16
    c.GatewaySettings.cluster_max_memory_gib = 6
    c.GatewaySettings.scratch_bucket = "lens-scratch"
    c.GatewaySettings.lens_service_url = budget_url
    c.GatewaySettings.worker_images = ["pangeo/pangeo-notebook:2026.1"]
    c.KubeBackend.gateway_instance = "lens-test"  # the chart sets DASK_GATEWAY_INSTANCE
    c.ClusterConfig.scheduler_cores = 1
    c.ClusterConfig.scheduler_memory = "1 G"
    c.Backend.cluster_options = lambda user: make_options(GatewaySettings(config=c))
    for key, value in extra.items():
        setattr(c.LensKubeBackend, key, value)
    backend = LensKubeBackend(config=c, admin_api_token=TOKEN)
    backend.clusters, backend.username_to_clusters = {}, {}
    return backend


def cache(backend, name: str, user: str, cores: int, status=ClusterStatus.RUNNING) -> None:
    """What KubeBackend.sync_cluster stores for a DaskCluster resource."""
    cluster = Cluster(name=name, username=user, token="", options={}, status=status,
                      config={"worker_cores": cores, "worker_memory": GIB, "scheduler_cores": 1,
                              "scheduler_memory": GIB, "cluster_max_cores": 1 + 2 * cores})
    backend.clusters[name] = cluster
    backend.username_to_clusters.setdefault(user, {})[name] = cluster


async def test_options_limits_and_environment_from_the_crd_cache():
    backend = make_backend()
    alice = User("alice")
    options, config = await backend.process_cluster_options(alice, {"worker_cores": 1, "worker_memory": 1})
    assert isinstance(config, KubeClusterConfig)
    assert config.cluster_max_cores == 4  # the per-cluster limit
    assert config.environment["SCRATCH_BUCKET"] == "s3://lens-scratch/scratch/alice"
    assert options["image"] == "pangeo/pangeo-notebook:2026.1"
    # an active cluster reserving 5 of alice's 6 cores leaves too little for another
    cache(backend, "ns.a1", "alice", cores=2)
    with pytest.raises(PublicException, match="Not enough cores left"):
        await backend.process_cluster_options(alice, {"worker_cores": 1})
    # stopped clusters and other users' clusters reserve nothing
    backend.username_to_clusters["alice"]["ns.a1"].status = ClusterStatus.STOPPED
    cache(backend, "ns.b1", "bob", cores=2)
    await backend.process_cluster_options(alice, {"worker_cores": 1})
    with pytest.raises(PublicException, match="worker_cores must be <= 4"):
        await backend.process_cluster_options(alice, {"worker_cores": 9})
    with pytest.raises(PublicException, match="services cannot create Dask clusters"):
        await backend.process_cluster_options(User("service:x"), {})


async def test_just_created_clusters_count_until_the_cache_has_them():
    backend = make_backend()
    alice = User("alice")
    for _ in range(2):  # what start_cluster does just before creating each resource
        _, config = await backend.process_cluster_options(alice, {"worker_cores": 1})
        backend.make_cluster_object("alice", {}, config)
    names = backend.lens_active_names("alice")
    assert len(names) == 2 and all(n.startswith(f"{config.namespace}.") for n in names)
    with pytest.raises(PublicException, match=r"2 active Dask cluster\(s\); the limit is 2"):
        await backend.process_cluster_options(alice, {"worker_cores": 1})
    # the informer delivers them: counted once, from the cache
    for name in names:
        cache(backend, name, "alice", cores=1)
    assert len(backend.lens_active_configs("alice")) == 2 and backend._pending() == {}
    # a pending entry expires if the resource never shows up
    expiring = make_backend(pending_seconds=0.0)
    _, config = await expiring.process_cluster_options(alice, {"worker_cores": 1})
    expiring.make_cluster_object("alice", {}, config)
    assert expiring.lens_active_configs("alice") == []


async def test_a_failed_creation_reserves_nothing():
    backend = make_backend()
    # no API client without a cluster: creating the resource fails after the object is made
    with pytest.raises(AttributeError, match="custom_client"):
        await backend.start_cluster(User("alice"), {"worker_cores": 1})
    assert backend._pending() == {} and backend.lens_active_configs("alice") == []


async def test_budget_refusal_before_anything_is_created():
    with BudgetServer() as budget:
        budget.refused.add("broke")
        backend = make_backend(budget.url)
        await backend.process_cluster_options(User("alice"), {"worker_cores": 1})
        with pytest.raises(PublicException, match="refused by budget: budget 100% used"):
            await backend.start_cluster(User("broke"), {"worker_cores": 1})
        assert backend._pending() == {}
        assert budget.calls[-1]["category"] == "dask" and budget.calls[-1]["auth"] == f"token {TOKEN}"


async def test_usage_route_says_kubernetes_is_not_metered():
    backend = make_backend()
    app = web.Application()
    backend.add_lens_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/v1/lens/usage"
            async with session.get(url, headers={"Authorization": f"token {TOKEN}"}) as resp:
                assert resp.status == 501
                assert "not metered on Kubernetes" in (await resp.json())["error"]
            async with session.get(url) as resp:
                assert resp.status == 403
    finally:
        await runner.cleanup()
