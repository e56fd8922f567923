"""A real dask-gateway-server (lens config, as root) authenticating against a real
JupyterHub: scopes, zero-config clients, unix users, limits, budget, culling,
cross-user isolation, metering."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pwd
import subprocess
import sys
import time

import pytest
import requests
from dask_gateway import Gateway

from jupyter_ext.gateway.metering import Rates, fetch_usage, my_cluster_costs, usage_intervals
from jupyter_ext.hub.dask_lifecycle import stop_user_clusters
from tests.dask.conftest import SCRATCH_BUCKET

pytestmark = pytest.mark.integration


def _gw(stack, who):
    from dask_gateway.auth import JupyterHubAuth

    return Gateway(
        address=stack.gateway.url,
        proxy_address=stack.gateway.proxy_address,
        auth=JupyterHubAuth(api_token=stack.tokens[who]),
    )


def refused(gw: Gateway, match: str, **options):
    """new_cluster must fail with ``match``. The failed GatewayCluster is collected
    here, in the main thread: dask-gateway 2026.3.0's client deadlocks when that
    happens inside its event-loop thread (Gateway.__del__ -> close() -> sync())."""
    with pytest.raises(ValueError, match=match) as info:
        gw.new_cluster(**options)
    info = None  # noqa: F841 - drop the traceback that holds the failed cluster
    gc.collect()


def wait_status(gw: Gateway, name: str, wanted: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = gw.get_cluster(name).status.name
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.25)


def assert_root_owned():
    st = os.stat("/")
    assert (st.st_uid, st.st_gid) == (0, 0), "/ is no longer root:root"


def test_token_without_service_scope_is_refused(dask_stack):
    s = dask_stack
    url = f"{s.gateway.url}/api/v1/clusters/"
    bad = s.hub.token(s.users["a"], [f"read:users:name!user={s.users['a']}"])
    assert requests.get(url, headers={"Authorization": f"jupyterhub {bad}"}, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "jupyterhub nonsense"}, timeout=10).status_code == 401
    good = requests.get(url, headers={"Authorization": f"jupyterhub {s.tokens['a']}"}, timeout=10)
    assert good.status_code == 200


ZERO_CONFIG_SCRIPT = r"""
import json, os, pwd
from dask_gateway import Gateway, GatewayCluster
gw = Gateway()
cluster = gw.new_cluster()
name1 = cluster.name
cluster.shutdown()
cluster = GatewayCluster()
cluster.scale(2)
client = cluster.get_client()
client.wait_for_workers(2, timeout=60)
total = client.submit(sum, range(101)).result()
uids = sorted(set(client.run(os.getuid).values()))
sched_uid = client.run_on_scheduler(os.getuid)
worker_env = list(client.run(lambda: {k: os.environ.get(k) for k in
    ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "SCRATCH_BUCKET")}).values())[0]
opts = gw.cluster_options()
widget = type(opts._widget()).__name__
client.close()
cluster.shutdown()
print(json.dumps({"name1": name1, "total": total, "uids": uids, "sched_uid": sched_uid,
                  "fields": sorted(opts), "widget": widget, "worker_env": worker_env}))
"""


def test_zero_config_clients_run_clusters_as_the_user(dask_stack):
    """Gateway() and GatewayCluster() with only the environment the spawner sets."""
    s = dask_stack
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_", "JUPYTERHUB_"))}
    env.update(s.gateway.client_env(s.tokens["a"]))
    out = subprocess.run(
        [sys.executable, "-c", ZERO_CONFIG_SCRIPT], env=env, capture_output=True, text=True, timeout=150
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    uid = pwd.getpwnam(f"jupyter-{s.users['a']}").pw_uid
    assert result["total"] == 5050
    assert result["uids"] == [uid] and result["sched_uid"] == uid
    assert result["fields"] == ["idle_timeout", "worker_cores", "worker_memory"]
    assert result["widget"] in ("VBox", "Box", "GridBox")
    # workers get the scoped scratch credentials and the endpoint, never the gateway's own key
    assert result["worker_env"] == {
        "AWS_ACCESS_KEY_ID": s.aws["AWS_ACCESS_KEY_ID"],
        "AWS_ENDPOINT_URL": s.aws["AWS_ENDPOINT_URL"],
        "SCRATCH_BUCKET": f"s3://{SCRATCH_BUCKET}/scratch/{s.users['a']}",
    }
    assert_root_owned()


def test_root_stays_root_after_clusters(dask_stack):
    """The upstream LocalBackend bug chowned / to the user; lens's subclass must not."""
    s = dask_stack
    gw = _gw(s, "b")
    cluster = gw.new_cluster(worker_memory=0.5)
    try:
        workdir_owner = None
        clusters_dir = os.path.join(s.gateway.state, "dask-clusters", cluster.name)
        if os.path.isdir(clusters_dir):
            workdir_owner = os.stat(clusters_dir).st_uid
        assert workdir_owner == pwd.getpwnam(f"jupyter-{s.users['b']}").pw_uid
        for path in ("/", "/tmp", s.gateway.state):
            assert os.stat(path).st_uid == 0, path
        assert_root_owned()
    finally:
        cluster.shutdown()
        gw.close()
    assert_root_owned()


def test_limits_give_clear_errors(dask_stack):
    s = dask_stack
    gw = _gw(s, "a")
    try:
        refused(gw, "worker_cores must be <= 4", worker_cores=99)
        refused(gw, "Not enough cores left", worker_cores=4)
        refused(gw, "Not enough memory left", worker_memory=8)
        c1 = gw.new_cluster(worker_memory=0.5)
        c2 = gw.new_cluster(worker_memory=0.5)
        try:
            refused(gw, r"2 active Dask cluster\(s\); the limit is 2", worker_memory=0.5)
            # each cluster reserved 3 of the 6 cores: 1 scheduler + 2 one-core workers
            report = gw.get_cluster(c1.name)
            assert report.options["worker_memory"] == 0.5
            with pytest.warns(UserWarning, match="exceed resource limit of 2 workers"):
                c1.scale(5)
        finally:
            c1.shutdown()
            c2.shutdown()
    finally:
        gw.close()


def test_budget_refusal(dask_stack):
    s = dask_stack
    gw = _gw(s, "c")
    try:
        refused(gw, r"refused by budget: budget 100% used")
        assert gw.list_clusters() == []
    finally:
        gw.close()
    call = [c for c in s.budget.calls if c.get("user") == s.users["c"]][-1]
    assert call["category"] == "dask"
    assert call["auth"] == f"token {s.hub.gateway_token}"


def test_cross_user_cannot_touch_clusters(dask_stack):
    s = dask_stack
    gw_a, gw_b = _gw(s, "a"), _gw(s, "b")
    cluster = gw_a.new_cluster(worker_memory=0.5)
    try:
        name = cluster.name
        assert name not in [c.name for c in gw_b.list_clusters()]
        with pytest.raises(Exception, match="403"):
            gw_b.connect(name)
        with pytest.raises(Exception, match="403"):
            gw_b.scale_cluster(name, 2)
        with pytest.raises(Exception, match="403"):
            gw_b.stop_cluster(name)
        with pytest.raises(Exception, match="403"):
            gw_b.get_cluster(name)
        gc.collect()
        # B's own costs route never lists A's cluster; B's token cannot use admin routes
        assert name not in [c["name"] for c in my_cluster_costs(gw_b)]
        for method, path in [
            ("GET", "/api/v1/lens/usage"),
            ("DELETE", f"/api/v1/lens/users/{s.users['a']}/clusters"),
        ]:
            for header in (f"token {s.tokens['b']}", f"jupyterhub {s.tokens['b']}", ""):
                r = requests.request(
                    method, s.gateway.url + path, headers={"Authorization": header}, timeout=10
                )
                assert r.status_code == 403
        assert gw_a.get_cluster(name).status.name == "RUNNING"
    finally:
        cluster.shutdown()
        gw_a.close()
        gw_b.close()


def test_idle_cluster_is_culled(dask_stack):
    s = dask_stack
    gw = _gw(s, "b")
    try:
        cluster = gw.new_cluster(worker_memory=0.5, idle_timeout=0.05)  # 3 seconds
        name = cluster.name
        assert gw.get_cluster(name).status.name == "RUNNING"
        t0 = time.monotonic()
        status = wait_status(gw, name, {"STOPPED", "FAILED"}, timeout=30)
        assert status == "STOPPED", status
        assert time.monotonic() - t0 >= 2
        refused(gw, "idle_timeout must be <= 480", idle_timeout=100000)
    finally:
        gw.close()


async def test_owner_server_stop_stops_clusters(dask_stack):
    s = dask_stack
    gw_a, gw_b = _gw(s, "a"), _gw(s, "b")
    a1 = gw_a.new_cluster(worker_memory=0.5)
    b1 = gw_b.new_cluster(worker_memory=0.5)
    try:
        assert await stop_user_clusters(s.users["a"], gateway_url=s.gateway.url, token="wrong") == []
        assert await stop_user_clusters(s.users["a"], gateway_url="http://127.0.0.1:9", token="x") == []
        assert gw_a.get_cluster(a1.name).status.name == "RUNNING"
        stopped = await stop_user_clusters(
            s.users["a"], gateway_url=s.gateway.url, token=s.hub.gateway_token
        )
        assert stopped == [a1.name]
        assert wait_status(gw_a, a1.name, {"STOPPED"}) == "STOPPED"
        assert gw_b.get_cluster(b1.name).status.name == "RUNNING"
    finally:
        b1.shutdown()
        a1.close()
        gw_a.close()
        gw_b.close()


async def test_metering_and_live_costs(dask_stack):
    s = dask_stack
    gw = _gw(s, "b")
    cluster = gw.new_cluster(worker_memory=1, worker_cores=1)
    try:
        t_start = int(time.time() * 1000)
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=60)
        await asyncio.sleep(1.0)
        rates = Rates(40_000, 5_000, 0)
        snapshot = await fetch_usage(s.gateway.url, s.hub.gateway_token)
        intervals = usage_intervals(snapshot, t_start - 60_000, int(snapshot["now"]), rates)
        mine = [i for i in intervals if i.cluster == cluster.name]
        assert len(mine) == 1 and mine[0].user == s.users["b"]
        assert mine[0].rate_microusd_per_hour == 40_000 + 5_000
        assert mine[0].end_ms - mine[0].start_ms >= 1000
        assert mine[0].cost_microusd == (45_000 * (mine[0].end_ms - mine[0].start_ms) + 1_800_000) // 3_600_000
        costs = {c["name"]: c for c in my_cluster_costs(gw)}
        live = costs[cluster.name]
        assert live["workers"] == 1 and live["microusd_per_hour"] == 45_000
        assert live["worker_memory_gib"] == 1.0
        assert live["accrued_microusd"] >= mine[0].cost_microusd
        with pytest.raises(RuntimeError, match="HTTP 403"):
            await fetch_usage(s.gateway.url, s.tokens["b"])
        client.close()
    finally:
        cluster.shutdown()
        gw.close()
