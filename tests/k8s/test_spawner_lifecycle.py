"""One lifecycle for both spawners (ProfileSpawnerMixin.start/stop/poll).

The same scenarios run against ``LocalProfileSpawner`` (real processes) and
``KubeProfileSpawner`` (kubespawner itself, with a recording Kubernetes API
client and a pod store standing in for the cluster). The lens service and the
Dask Gateway are one real HTTP server on loopback that records every call:
a failed start gives the budget hold back, a start opens the metering
interval (taking the hold over), a stop stops the owner's Dask clusters and
closes the interval, once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from types import SimpleNamespace

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets.config import Config

from tests.k8s.conftest import make_user

HOLD_ID = 42
KINDS = ["local", "kube"]


# -- the lens service and the gateway, recording ----------------------------------

class Recorder(web.RequestHandler):
    def record(self, **extra):
        body = json.loads(self.request.body) if self.request.body else None
        self.application.settings["calls"].append(
            {"method": self.request.method, "path": self.request.path, "body": body,
             "auth": self.request.headers.get("Authorization"), **extra}
        )
        return body


class Hold(Recorder):
    def post(self):
        self.record()
        self.write({"allowed": True, "hold_id": HOLD_ID})


class Release(Recorder):
    def post(self):
        self.record()
        self.write({"released": True})


class Meter(Recorder):
    def post(self):
        self.record()
        self.set_status(201)
        self.write({"recorded": True})


class Clusters(Recorder):
    def delete(self, user):
        self.record(user=user)
        self.write({"stopped": [f"{user}.cluster-1"]})


@pytest.fixture
async def services():
    calls: list[dict] = []
    app = web.Application(
        [
            (r"/services/lens/api/budget/hold", Hold),
            (r"/services/lens/api/budget/release", Release),
            (r"/services/lens/api/meter/servers", Meter),
            (r"/services/dask-gateway/api/v1/lens/users/([^/]+)/clusters", Clusters),
        ],
        calls=calls,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = HTTPServer(app)
    server.add_sockets([sock])
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield SimpleNamespace(lens=f"{base}/services/lens/", gateway=f"{base}/services/dask-gateway", calls=calls)
    server.stop()


def meter_events(calls) -> list[tuple[str, object]]:
    return [(c["body"]["event"], c["body"].get("hold_id")) for c in calls if c["path"].endswith("/meter/servers")]


def releases(calls) -> list[int]:
    return [c["body"]["hold_id"] for c in calls if c["path"].endswith("/budget/release")]


def cluster_stops(calls) -> list[tuple[str, str]]:
    return [(c["user"], c["auth"]) for c in calls if c["path"].endswith("/clusters")]


# -- Kubernetes: kubespawner against a recording API client ------------------------

class PodStore:
    """What kubespawner's pod reflector would see: pods by 'namespace/name'."""

    def __init__(self):
        self.pods: dict[str, dict] = {}
        self.first_load_future = asyncio.get_running_loop().create_future()
        self.first_load_future.set_result(None)

    async def stop(self):
        pass


class RecordingCoreV1Api:
    """The CoreV1Api methods kubespawner's start/stop call, recorded; pods land in the store."""

    def __init__(self, store: PodStore, fail_pod_create: bool = False):
        self.store, self.fail_pod_create, self.calls = store, fail_pod_create, []

    async def read_namespaced_persistent_volume_claim(self, name, namespace):
        from kubernetes_asyncio.client.rest import ApiException

        self.calls.append(("read_pvc", namespace, name))
        raise ApiException(status=404, reason="Not Found")

    async def create_namespaced_persistent_volume_claim(self, namespace, body):
        self.calls.append(("create_pvc", namespace, body.metadata.name))
        return body

    async def create_namespaced_pod(self, namespace, body):
        from kubernetes_asyncio.client import ApiClient
        from kubernetes_asyncio.client.rest import ApiException

        self.calls.append(("create_pod", namespace, body.metadata.name))
        if self.fail_pod_create:
            raise ApiException(status=403, reason="Forbidden: exceeded quota")
        async with ApiClient() as api:
            pod = api.sanitize_for_serialization(body)
        pod["metadata"]["uid"] = "uid-1"
        pod["status"] = {"phase": "Running", "podIP": "10.1.2.3",
                         "containerStatuses": [{"name": "notebook", "ready": True, "state": {"running": {}}}]}
        self.store.pods[f"{namespace}/{body.metadata.name}"] = pod
        return body

    async def delete_namespaced_pod(self, name, namespace, body=None, grace_period_seconds=None):
        from kubernetes_asyncio.client.rest import ApiException

        self.calls.append(("delete_pod", namespace, name))
        if self.store.pods.pop(f"{namespace}/{name}", None) is None:
            raise ApiException(status=404, reason="Not Found")


def kill_pod(spawner):
    pod = spawner._pod_store.pods[f"{spawner.namespace}/{spawner.pod_name}"]
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}


# -- local: real processes -----------------------------------------------------------

# A stand-in server: listens where the hub told it to (the spawner waits for that), then idles.
SLEEPER = [sys.executable, "-c",
           "import os, socket, time, urllib.parse\n"
           "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "s.bind(('127.0.0.1', urllib.parse.urlsplit(os.environ['JUPYTERHUB_SERVICE_URL']).port))\n"
           "s.listen(); time.sleep(120)"]


def local_class():
    from spawners.local import LocalProfileSpawner

    class DevModeLocalSpawner(LocalProfileSpawner):
        """Dev mode even as root: no unix accounts or cgroups made by a unit test."""

        @property
        def per_user_accounts(self) -> bool:
            return False

    return DevModeLocalSpawner


def kill_process(spawner):
    spawner.proc.kill()
    spawner.proc.wait(10)


@pytest.fixture
def make_lifecycle_spawner(make_spawner, k8s_config, services, tmp_path):
    """A started-able spawner of either kind, wired to the recording services."""
    made = []

    def make(kind: str, fail: bool = False):
        cfg = Config(k8s_config)
        for section in ("KubeProfileSpawner", "LocalProfileSpawner"):
            cfg[section].lens_service_url = services.lens
            cfg[section].lens_api_token = "gate-token"
            cfg[section].dask_gateway_url = services.gateway
            cfg[section].dask_gateway_token = "gw-token"
            cfg[section].lens_outbox_path = str(tmp_path / "outbox.sqlite")  # each test its own
        user = make_user("alice")
        if kind == "kube":
            from spawners.kube import KubeProfileSpawner

            cfg.KubeProfileSpawner.events_enabled = False
            spawner = make_spawner(user=user, config=cfg)
            store = PodStore()
            KubeProfileSpawner.reflectors[spawner._get_reflector_key("pods")] = store
            spawner.api = RecordingCoreV1Api(store, fail_pod_create=fail)
            spawner._pod_store = store
            spawner.k8s_api_request_retry_timeout = 5
            spawner.start_timeout = 10
            spawner._kill = kill_pod
        else:
            cfg.LocalProfileSpawner.dev_home_root = str(tmp_path / "homes")
            cfg.LocalProfileSpawner.enforce_memory_limit = False
            cfg.LocalProfileSpawner.cmd = ["/nonexistent/jupyterhub-singleuser"] if fail else SLEEPER
            spawner = local_class()(user=user, hub=make_spawner().hub, config=cfg)
            spawner._kill = kill_process
        made.append(spawner)
        return spawner

    yield make
    from spawners.kube import KubeProfileSpawner

    for spawner in made:
        proc = getattr(spawner, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
    KubeProfileSpawner.reflectors.clear()


async def spawn(spawner):
    """What the hub does before start: apply the options, run the pre-spawn hook (the hold)."""
    await spawner._run_apply_user_options({"profile": "lab"})
    await spawner.run_pre_spawn_hook()
    assert spawner._hold_id == HOLD_ID


@pytest.mark.parametrize("kind", KINDS)
async def test_failed_start_releases_the_hold(kind, make_lifecycle_spawner, services):
    spawner = make_lifecycle_spawner(kind, fail=True)
    await spawn(spawner)
    with pytest.raises(Exception) as err:
        await spawner.start()
    assert "exceeded quota" in str(err.value) or isinstance(err.value, FileNotFoundError)
    assert releases(services.calls) == [HOLD_ID]
    assert meter_events(services.calls) == []  # nothing was metered
    # the hub then stops the server that failed to start: nothing to close, nothing leaks
    await spawner.stop(now=True)
    assert meter_events(services.calls) == [] and releases(services.calls) == [HOLD_ID]
    if kind == "kube":
        assert [c[0] for c in spawner.api.calls].count("create_pod") == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_start_opens_and_stop_closes_the_meter_and_stops_clusters(kind, make_lifecycle_spawner, services):
    spawner = make_lifecycle_spawner(kind)
    await spawn(spawner)
    await spawner.start()
    # the start event takes the hold over (the service turns it into metering)
    assert meter_events(services.calls) == [("start", HOLD_ID)]
    assert releases(services.calls) == []
    start = next(c for c in services.calls if c["path"].endswith("/meter/servers"))
    assert start["auth"] == "token gate-token"
    assert start["body"]["user"] == "alice" and start["body"]["profile"] == "lab"
    assert await spawner.poll() is None
    assert spawner.get_state()["metered"] is True

    await spawner.stop()
    assert cluster_stops(services.calls) == [("alice", "token gw-token")]
    assert meter_events(services.calls) == [("start", HOLD_ID), ("stop", None)]
    if kind == "kube":
        assert ("delete_pod", spawner.namespace, "jupyter-alice") in spawner.api.calls
    else:
        assert spawner.proc.poll() is not None  # the process is gone
    # a second stop (the hub may stop twice) closes nothing twice
    await spawner.stop()
    assert meter_events(services.calls) == [("start", HOLD_ID), ("stop", None)]
    assert releases(services.calls) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_found_dead_closes_its_meter_once(kind, make_lifecycle_spawner, services):
    spawner = make_lifecycle_spawner(kind)
    await spawn(spawner)
    await spawner.start()
    spawner._kill(spawner)
    for _ in range(50):
        status = await spawner.poll()
        if status is not None:
            break
        await asyncio.sleep(0.1)
    assert status is not None
    assert meter_events(services.calls) == [("start", HOLD_ID), ("stop", None)]
    await spawner.stop()  # what the hub does next: the clusters stop, the meter is not closed again
    assert meter_events(services.calls) == [("start", HOLD_ID), ("stop", None)]
    assert ("alice", "token gw-token") in cluster_stops(services.calls)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failing_pre_spawn_hook_gives_the_hold_back(kind, make_lifecycle_spawner, services):
    spawner = make_lifecycle_spawner(kind)

    def refuse(spawner):
        raise RuntimeError("site hook refused")

    spawner.pre_spawn_hook = refuse
    await spawner._run_apply_user_options({"profile": "lab"})
    with pytest.raises(RuntimeError, match="site hook refused"):
        await spawner.run_pre_spawn_hook()
    assert releases(services.calls) == [HOLD_ID]


def test_the_spawners_define_no_lifecycle_of_their_own():
    """start/stop/poll/run_pre_spawn_hook live once, in the mixin."""
    from spawners.common import ProfileSpawnerMixin
    from spawners.kube import KubeProfileSpawner
    from spawners.local import LocalProfileSpawner

    for cls in (LocalProfileSpawner, KubeProfileSpawner):
        for name in ("start", "stop", "poll", "run_pre_spawn_hook", "ensure_scratch"):
            assert name not in vars(cls), f"{cls.__name__}.{name} duplicates the mixin's"
            assert getattr(cls, name) is getattr(ProfileSpawnerMixin, name)
