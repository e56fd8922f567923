"""LensKubeBackend without a Kubernetes cluster: the real backend class, its real
option processing and limits, the informer cache filled with dask-gateway's own
``models.Cluster`` records (what ``KubeBackend.sync_cluster`` stores), the budget
check against a real HTTP server, and the lens routes on a real aiohttp server.
Metering: DaskCluster objects go through dask-gateway's real ``Informer.handle``,
``WorkQueue`` and ``sync_clusters_loop`` / ``sync_cluster``; heartbeats through
the real ``on_cluster_heartbeat``; the usage snapshot through the real route and
the lens service's ``fetch_usage`` and ``dask_charging.plan``.
What needs an API server (creating the DaskCluster resource, listing/watching
it, the controller, pods) is not exercised here; see docs/dask.md."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections import defaultdict
from contextlib import asynccontextmanager

import aiohttp
import click
import pytest
from aiohttp import web
from dask_gateway_server.auth import SimpleAuthenticator
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.backends.kubernetes.controller import KubeController
from dask_gateway_server.backends.kubernetes.utils import Informer
from dask_gateway_server.models import Cluster, ClusterStatus, User
from dask_gateway_server.utils import Flag
from dask_gateway_server.workqueue import WorkQueue
from traitlets.config import Config

from jupyter_ext.gateway.backend import cluster_record
from jupyter_ext.gateway.kube import LensKubeBackend, with_heartbeat
from jupyter_ext.gateway.metering import Rates, cost_microusd, fetch_usage
from jupyter_ext.gateway.options import make_options
from jupyter_ext.gateway.settings import GIB, GatewaySettings
from jupyter_ext.service import dask_charging
from tests.dask.support import BudgetServer

TOKEN = "gateway-service-token"


def make_backend(budget_url: str = "", **extra) -> LensKubeBackend:
    c = Config()
    c.GatewaySettings.kubernetes = True
    c.GatewaySettings.user_max_clusters = 2
    c.GatewaySettings.user_max_cores = 6
    c.ClusterConfig.cluster_max_cores = 4
    c.GatewaySettings.user_max_memory_gib = 16
    c.ClusterConfig.cluster_max_memory = 6 * GIB
    c.GatewaySettings.scratch_bucket = "lens-scratch"
    c.GatewaySettings.lens_service_url = budget_url
    c.GatewaySettings.worker_images = ["pangeo/pangeo-notebook:2026.1"]
    c.KubeBackend.gateway_instance = "lens-test"  # the chart sets DASK_GATEWAY_INSTANCE
    c.ClusterConfig.scheduler_cores = 1
    c.KubeClusterConfig.scheduler_cmd = ["dask", "scheduler"]  # as the chart's extraConfig sets it
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


async def test_operator_cluster_config_holds():
    """c.ClusterConfig's per-cluster caps are dask-gateway's own; lens never loosens them."""
    backend = make_backend()
    backend.config.ClusterConfig.cluster_max_workers = 2
    backend.config.ClusterConfig.cluster_max_cores = 3
    backend.config.ClusterConfig.cluster_max_memory = "6 G"  # dask-gateway: G = 2**30
    backend.config.GatewaySettings.user_max_cores = 8
    backend.config.GatewaySettings.user_max_memory_gib = 32
    backend._lens_settings = None
    _, config = await backend.process_cluster_options(User("alice"), {"worker_cores": 1, "worker_memory": 1})
    assert (config.cluster_max_workers, config.cluster_max_cores, config.cluster_max_memory) == (2, 3, 6 * GIB)


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


@asynccontextmanager
async def serve(backend):
    """The lens routes (and upstream's SimpleAuthenticator for user routes) on a real aiohttp server."""
    app = web.Application()
    app["authenticator"] = SimpleAuthenticator(password="pw")
    backend.add_lens_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


class PatchRecorder:
    """Stand-in for KubeBackend.custom_client (a kubernetes_asyncio CustomObjectsApi),
    which needs an API server: upstream's on_cluster_heartbeat ends by patching the
    DaskCluster's replicas with it. Only that one call is provided, and recorded."""

    def __init__(self):
        self.patches = []

    async def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        self.patches.append((namespace, name, body))


class Clock:
    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def wire_informer(backend):
    """What KubeBackend.setup builds, minus the API client and the list/watch
    task: the real Informer (its cache filled by handle()), WorkQueue and sync loop."""
    backend.clusters, backend.username_to_clusters = {}, defaultdict(dict)
    backend.cluster_waiters = defaultdict(Flag)
    backend.queue = WorkQueue()
    backend.informer = Informer(parent=backend, name="cluster", client=None, method="list",
                                on_update=backend.on_cluster_event, on_delete=backend.on_cluster_event)
    backend.informer.cache = {}
    backend.custom_client = PatchRecorder()
    backend.sync_task = asyncio.ensure_future(backend.sync_clusters_loop())


async def deliver(backend, obj, event="MODIFIED"):
    """An informer event, then wait until the real sync loop has processed it."""
    backend.informer.handle(obj, event)
    name = f"{obj['metadata']['namespace']}.{obj['metadata']['name']}"
    for _ in range(200):
        await asyncio.sleep(0.005)
        cached = backend.clusters.get(name)
        if (cached is None) == (event == "DELETED") and (
            cached is None or cached.status.name.lower() == obj["status"]["phase"].lower()
        ) and not backend.queue._queue:
            return name
    raise AssertionError(f"sync_cluster did not process {event} {name}")


async def dask_cluster(backend, user, options, phase="Running"):
    """A DaskCluster object as the API server would list it: made by the real
    make_cluster_object from the real option processing, plus what the controller adds."""
    options, config = await backend.process_cluster_options(User(user), options)
    obj = backend.make_cluster_object(user, options, config)
    obj["metadata"].update(namespace=config.namespace, creationTimestamp="2026-03-01T10:00:00Z")
    obj["status"] = {"phase": phase, "service": f"dask-{obj['metadata']['name']}"}
    return obj


def hb(active=(), closing=(), closed=(), count=None):
    return {"count": len(active) if count is None else count, "active_workers": list(active),
            "closing_workers": list(closing), "closed_workers": list(closed)}


async def test_kubernetes_worker_time_is_metered_and_charged_once():
    backend = make_backend()
    clock = backend.now_ms = Clock(1_000_000)
    wire_informer(backend)
    try:
        obj = await dask_cluster(backend, "alice", {"worker_cores": 1, "worker_memory": 1.5})
        name = await deliver(backend, obj, "ADDED")
        other = await deliver(backend, await dask_cluster(backend, "bob", {"worker_cores": 1}), "ADDED")
        rate = Rates.from_settings(backend.lens).worker_rate(1, int(1.5 * GIB))
        assert rate == 47_500  # 1 x 40 000 + 1.5 GiB x 5 000 micro-USD per hour

        async with serve(backend) as url:
            gateway = f"{url}/"
            watermark = clock.ms  # the service's first start: charge from now on
            charged: list = []

            async def charge_window():
                nonlocal watermark
                snapshot = await fetch_usage(gateway, TOKEN)  # what DaskMeter.charge_window reads
                intervals, watermark = dask_charging.plan(snapshot, watermark, Rates(1, 1))
                charged.extend(intervals)
                return snapshot

            clock.ms += 15_000
            await backend.on_cluster_heartbeat(name, hb(["w1", "w2"]))
            await backend.on_cluster_heartbeat(other, hb(["x1"]))
            start = clock.ms
            clock.ms += 45_000
            await backend.on_cluster_heartbeat(name, hb(["w1", "w2"]))
            snap = await charge_window()  # both still running
            record = next(c for c in snap["clusters"] if c["name"] == name)
            assert record["rate_microusd_per_hour"] == rate and record["username"] == "alice"
            assert record["worker_cores"] == 1 and record["worker_memory"] == int(1.5 * GIB)
            assert {w["name"]: (w["start_time"], w["stop_time"]) for w in record["workers"]} == {
                "w1": (start, None), "w2": (start, None)}

            # the widget's route: alice's own running cluster, 2 workers at 2 x rate
            auth = {"Authorization": "Basic " + base64.b64encode(b"alice:pw").decode()}
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{url}/api/v1/lens/costs", headers=auth) as resp:
                    costs = (await resp.json())["clusters"]
            assert [(c["name"], c["workers"], c["microusd_per_hour"]) for c in costs] == [(name, 2, 2 * rate)]
            assert costs[0]["accrued_microusd"] == 2 * cost_microusd(rate, 45_000)  # 2 x 593.75, half up

            clock.ms += 30_000
            w2_stop = clock.ms
            await backend.on_cluster_heartbeat(name, hb(["w1"], closing=["w2"], count=1))
            clock.ms += 30_000
            await backend.on_cluster_heartbeat(name, hb(["w1"], closed=["w2"], count=1))
            await charge_window()
            # the controller marks the cluster Stopped: w1 ends when the gateway sees it
            clock.ms += 20_000
            w1_stop = clock.ms
            obj["status"].update(phase="Stopped", completionTime="2026-03-01T10:03:00Z")
            await deliver(backend, obj)
            clock.ms += 5_000
            await backend.on_cluster_heartbeat(name, hb(["w1"], count=1))  # a late heartbeat: ignored
            # ... and deletes it; the service charges the tail afterwards
            clock.ms += 60_000
            await deliver(backend, obj, "DELETED")
            assert name not in backend.clusters
            clock.ms += 60_000
            snap = await charge_window()
            record = next(c for c in snap["clusters"] if c["name"] == name)
            assert record["status"] == "STOPPED" and record["stop_time"] is not None
            assert {w["name"]: (w["start_time"], w["stop_time"]) for w in record["workers"]} == {
                "w1": (start, w1_stop), "w2": (start, w2_stop)}

        mine = [iv for iv in charged if iv.cluster == name]
        per_worker = {w: sum(iv.end_ms - iv.start_ms for iv in mine if iv.worker == w) for w in ("w1", "w2")}
        assert per_worker == {"w1": w1_stop - start, "w2": w2_stop - start}
        assert all(iv.rate_microusd_per_hour == rate for iv in mine)  # the gateway's rate, not the fallback
        exact = rate * ((w1_stop - start) + (w2_stop - start)) / 3_600_000
        assert abs(sum(iv.cost_microusd for iv in mine) - exact) <= 0.5 * len(mine)  # half-up per interval
        refs = [dask_charging.interval_ref(iv) for iv in charged]
        assert len(refs) == len(set(refs))
        bob = [iv for iv in charged if iv.cluster == other]
        assert sum(iv.end_ms - iv.start_ms for iv in bob) == clock.ms - start  # still running: up to now
        # upstream's heartbeat still scales the DaskCluster (the only API call stood in for)
        assert backend.custom_client.patches[0][2] == [{"op": "add", "path": "/spec/replicas", "value": 2}]
    finally:
        backend.queue.close()
        await backend.sync_task


async def test_finished_clusters_are_kept_for_the_retention_then_forgotten():
    backend = make_backend(cluster_usage_max_age=600.0)
    clock = backend.now_ms = Clock(5_000_000)
    wire_informer(backend)
    try:
        obj = await dask_cluster(backend, "alice", {"worker_cores": 1})
        name = await deliver(backend, obj, "ADDED")
        await backend.on_cluster_heartbeat(name, hb(["w1"]))
        clock.ms += 10_000
        await deliver(backend, obj, "DELETED")
        clock.ms += 600_000
        assert [c["name"] for c in backend.usage_snapshot()["clusters"]] == [name]
        clock.ms += 1
        assert backend.usage_snapshot()["clusters"] == []
    finally:
        backend.queue.close()
        await backend.sync_task


async def test_kube_records_have_the_db_backends_shape():
    """The lens service reads both the same way: same keys, same worker keys."""
    from dask_gateway_server.backends.db_base import Cluster as DBCluster
    from dask_gateway_server.backends.db_base import JobStatus
    from dask_gateway_server.backends.db_base import Worker as DBWorker

    backend = make_backend()
    backend.now_ms = Clock(2_000)
    cache(backend, "ns.k1", "alice", cores=2)
    backend.tracker.heartbeat("ns.k1", hb(["w"]), 1_000)  # not observed yet: ignored
    backend.lens_cluster_records()
    backend.tracker.heartbeat("ns.k1", hb(["w"]), 1_500)
    (kube,) = backend.lens_cluster_records()
    db = DBCluster(id=1, name="c", username="alice", token="t", options={}, config={"worker_cores": 2},
                   status=JobStatus.RUNNING, start_time=1, stop_time=None)
    db.workers["w"] = DBWorker(id=1, name="w", cluster=db, status=JobStatus.RUNNING, start_time=1, stop_time=None)
    expected = cluster_record(db, Rates.from_settings(backend.lens))
    assert kube.keys() == expected.keys()
    assert kube["workers"][0].keys() == expected["workers"][0].keys()
    assert kube["workers"] == [{"name": "w", "status": "RUNNING", "start_time": 1_500, "stop_time": None}]


async def test_usage_route_needs_the_service_token():
    backend = make_backend()
    async with serve(backend) as url, aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/v1/lens/usage") as resp:
            assert resp.status == 403
        async with session.get(f"{url}/api/v1/lens/usage", headers={"Authorization": f"token {TOKEN}"}) as resp:
            assert resp.status == 200 and (await resp.json())["clusters"] == []


# -- the scheduler's heartbeat period on Kubernetes ---------------------------------

async def test_schedulers_heartbeat_periodically_despite_the_controllers_zero(tmp_path):
    """The stock controller appends ``--dg-heartbeat-period 0`` to scheduler_cmd
    (heartbeat only when scaling). Through lens's wrapped command, run by a real
    ``sh`` (with a stand-in ``dask`` that prints its argv), the arguments that
    reach distributed's real ``dask scheduler`` CLI hand the dask-gateway preload a
    15 s period."""
    from dask_gateway.scheduler_preload import dask_setup
    from distributed.cli.dask_scheduler import main as scheduler_cli

    backend = make_backend()
    _, config = await backend.process_cluster_options(User("alice"), {"worker_cores": 1})
    # what the controller does with the cluster's config (KubeController.get_scheduler_command)
    args = KubeController.get_scheduler_command(None, "lens", "c1", KubeClusterConfig(**config.to_dict()))
    assert args[args.index("--dg-heartbeat-period") + 1] == "0"
    stub = tmp_path / "dask"
    stub.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    proc = await asyncio.create_subprocess_exec(*args, env=env, stdout=subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    argv = json.loads(out)
    assert argv[0] == "scheduler" and argv[-2:] == ["--dg-heartbeat-period", "15"]
    ctx = scheduler_cli.make_context("scheduler", argv[1:])
    assert ctx.params["preload"] == ("dask_gateway.scheduler_preload",)
    preload = dask_setup.make_context("dask_setup", list(ctx.params["preload_argv"]))
    assert preload.params["dg_heartbeat_period"] == 15.0
    assert preload.params["dg_idle_timeout"] == config.idle_timeout
    # 0 keeps the controller's behaviour; wrapping twice wraps the original once
    assert with_heartbeat(with_heartbeat(["dask", "scheduler"], 15), 5) == with_heartbeat(["dask", "scheduler"], 5)
    off = make_backend(scheduler_heartbeat_period=0.0)
    _, plain = await off.process_cluster_options(User("alice"), {"worker_cores": 1})
    assert plain.scheduler_cmd == ["dask", "scheduler"]
    with pytest.raises(click.UsageError):  # the parse above has teeth
        scheduler_cli.make_context("scheduler", ["--no-such-option"])
