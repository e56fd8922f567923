"""Pre-warmed classes on Kubernetes, checked offline (no API server can run here):

- the chart: the Role lets the lens service do exactly get/patch on
  statefulsets/scale of z2jh's user-placeholder StatefulSet, in the release
  namespace, bound to the service's own account; the placeholder spec the
  service pod gets ($LENS_PLACEHOLDERS) says what the rendered StatefulSet and
  the continuous pre-puller really are;
- the command, in the service pod's environment as rendered, records the plan;
- the service's loop sends the exact scale request (through kubernetes_asyncio,
  to a loopback stand-in of the scale subresource) up at the plan's start and
  back down after it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import kubernetes_validate
import pytest
from aiohttp import web

from jupyter_ext.quantity import parse_quantity
from jupyter_ext.workshop import placeholders as ph
from spawners.profiles import load_catalog
from tests.k8s.conftest import REPO
from tests.k8s.test_helm import K8S_VERSIONS, VALUE_SETS, container, env_of, helm, render

CATALOG = load_catalog(REPO / "hub_config" / "profiles.yaml")
LENS_MAIN = "import sys; from jupyter_ext.cli.main import main; sys.exit(main(sys.argv[1:]))"


def spec_env(objs: list[dict]) -> str:
    deployment = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "lens-service")
    return env_of(container(deployment, "lens-service"))[ph.SPEC_ENV]["value"]


def test_the_role_grants_exactly_scale_of_the_placeholders():
    objs = render(release="r2", namespace="ns2")
    by_kind = {o["kind"]: o for o in objs}
    role, binding = by_kind["Role"], by_kind["RoleBinding"]
    for obj in (role, binding):
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
        assert obj["metadata"]["namespace"] == "ns2"
    assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["statefulsets/scale"],
                              "resourceNames": ["user-placeholder"], "verbs": ["get", "patch"]}]
    # bound to the account the lens service pod runs as, nobody else
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "ns2"}]
    assert by_kind["ServiceAccount"]["metadata"]["name"] == pod["serviceAccountName"]
    assert pod.get("automountServiceAccountToken", True) is not False  # the token the client loads
    spec = ph.PlaceholderSpec.from_json(spec_env(objs))
    assert (spec.statefulset, spec.namespace) == ("user-placeholder", "ns2")


def test_prewarm_off_means_no_role_and_no_loop():
    objs = render({"lens": {"prewarm": {"enabled": False, "maxPlaceholders": 100}}})
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")]
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    assert ph.SPEC_ENV not in env_of(container(deployment, "lens-service"))


def test_the_chart_refuses_prewarm_without_placeholders():
    helm_python = helm()
    with pytest.raises(helm_python.HelmError, match="userPlaceholder.enabled"):
        render({"jupyterhub": {"scheduling": {"userPlaceholder": {"enabled": False}}}})
    with pytest.raises(helm_python.HelmError, match="resources.requests.cpu"):
        render({"jupyterhub": {"scheduling": {"userPlaceholder": {"resources": None}}}})
    with pytest.raises(helm_python.HelmError, match="maxPlaceholders"):
        render({"lens": {"prewarm": {"enabled": True, "maxPlaceholders": -1}}})


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_spec_matches_the_rendered_placeholders_and_pre_puller(rendered_chart, value_set):
    r = rendered_chart(value_set)
    spec = ph.PlaceholderSpec.from_json(spec_env(r.objects))
    sts = r.get("StatefulSet", spec.statefulset)
    pod = sts["spec"]["template"]["spec"]
    (pause,) = pod["containers"]
    # what one placeholder holds, where, and the always-there count: the rendered StatefulSet's
    assert ph.parse_cpu(pause["resources"]["requests"]["cpu"]) == spec.cpu
    assert parse_quantity(pause["resources"]["requests"]["memory"]) == spec.memory
    assert pod["nodeSelector"] == spec.node_selector
    assert sts["spec"]["replicas"] == spec.base_replicas == (2 if value_set == "eks" else 0)
    assert 0 < spec.max_replicas == r.values["lens"]["prewarm"]["maxPlaceholders"]
    # placeholders are evicted for real user pods: their priority is lower
    # (z2jh gives user pods "<release>-default-priority")
    assert r.get("PriorityClass", pod["priorityClassName"])["value"] < r.get("PriorityClass", "lens-default-priority")["value"]
    # the images the continuous pre-puller (a DaemonSet on every node, new ones too) pulls
    puller = r.get("DaemonSet", "continuous-image-puller")["spec"]["template"]["spec"]
    pulled = {c["image"] for c in puller["initContainers"]}
    assert set(spec.prepulled_images) <= pulled
    assert set(spec.prepulled_images) == {p.image for p in CATALOG.profiles}
    # the hook pre-puller runs on helm install/upgrade only: not what warms a class (docs/workshop.md)
    assert r.values["jupyterhub"]["prePuller"]["continuous"]["enabled"] is True
    # one lab pod's room is one placeholder; the CPU profiles fit where placeholders go; GPU does not
    lab = CATALOG.get("lab")
    assert ph.placeholders_for(40, lab.cpu.guarantee, lab.memory.guarantee, spec) == 40
    for profile in CATALOG.profiles:
        problem = ph.placement_problem(profile.slug, dict(profile.node_selector), profile.gpu_count, spec)
        assert (problem is None) == (profile.gpu_count == 0), (profile.slug, problem)


# -- the command in the service pod, and the service's loop ---------------------

def make_workshop(state_root, name: str, seats: int, profiles: tuple[str, ...]) -> None:
    from jupyter_ext.hub.state import StateDir
    from jupyter_ext.workshop.model import Workshop, utcnow
    from jupyter_ext.workshop.roster import Seat
    from jupyter_ext.workshop.store import WorkshopStore

    store = WorkshopStore.from_url(StateDir(state_root).lens_db_url)  # the service's database
    store.save(Workshop(name=name, expires_at=utcnow() + timedelta(days=1), profiles=profiles))
    store.add_seats(name, [Seat(f"{name}-{i:02d}") for i in range(1, seats + 1)])


def lens_cli(state_root, *args, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("LENS_DB_URL", ph.SPEC_ENV, "LENS_DEPLOYMENT")}
    full_env |= {"PYTHONPATH": str(REPO), "LENS_STATE_DIR": str(state_root), **env}
    return subprocess.run([sys.executable, "-c", LENS_MAIN, "workshop", *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, timeout=120)


class ScaleAPI:
    """The scale subresource of one StatefulSet, as the API server answers it (loopback)."""

    def __init__(self, namespace: str, name: str, replicas: int):
        self.namespace, self.name, self.replicas = namespace, name, replicas
        self.requests: list[dict] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}/scale", self.handle)

    def scale(self) -> dict:
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"replicas": self.replicas}, "status": {"replicas": self.replicas}}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append({"method": request.method, "path": request.path,
                              "content_type": request.headers.get("Content-Type"),
                              "authorization": request.headers.get("Authorization"),
                              "body": json.loads(body) if body else None})
        if (request.match_info["ns"], request.match_info["name"]) != (self.namespace, self.name):
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if request.method == "PATCH":
            if request.headers.get("Content-Type") != "application/merge-patch+json":
                return web.json_response({"kind": "Status", "code": 415}, status=415)
            self.replicas = json.loads(body)["spec"]["replicas"]
        elif request.method != "GET":
            return web.json_response({"kind": "Status", "code": 405}, status=405)
        return web.json_response(self.scale())


@pytest.fixture
async def scale_api():
    from kubernetes_asyncio import client

    api = ScaleAPI("lens", "user-placeholder", replicas=0)
    runner = web.AppRunner(api.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    cfg = client.Configuration(host=f"http://127.0.0.1:{port}")
    cfg.api_key = {"BearerToken": "sa-token"}
    cfg.api_key_prefix = {"BearerToken": "Bearer"}
    api.client = client.ApiClient(cfg)
    yield api
    await api.client.close()
    await runner.cleanup()


async def test_prewarm_command_and_service_loop_scale_up_and_back(rendered_chart, scale_api, tmp_path):
    from jupyter_ext.clients.kube import StatefulSetScale
    from jupyter_ext.service.workshop_routes import reconcile_placeholders

    r = rendered_chart("eks")  # base 2: the chart's own headroom stays
    pod_env = {"LENS_DEPLOYMENT": "k8s", ph.SPEC_ENV: spec_env(r.objects)}
    spec = ph.PlaceholderSpec.from_json(pod_env[ph.SPEC_ENV])
    state = tmp_path / "state"
    make_workshop(state, "bio101", 12, ("lab",))
    make_workshop(state, "gpu1", 2, ("gpu",))

    # outside the service pod (no $LENS_PLACEHOLDERS): told where to run it
    out = lens_cli(state, "prewarm", "bio101", env={"LENS_DEPLOYMENT": "k8s"})
    assert out.returncode == 2 and "kubectl exec -n NAMESPACE deploy/lens-service" in out.stderr, out.stderr
    assert ph.read_plans(state) == []
    # a GPU class: placeholders cannot bring up GPU nodes; refused, nothing recorded
    out = lens_cli(state, "prewarm", "gpu1", env=pod_env)
    assert out.returncode == 2 and "requests a GPU" in out.stderr, out.stderr
    for bad in (["--lead", "-1"], ["--starts", "tomorrow"]):
        out = lens_cli(state, "prewarm", "bio101", *bad, env=pod_env)
        assert out.returncode == 2 and ph.read_plans(state) == [], out.stderr

    out = lens_cli(state, "prewarm", "bio101", "--starts", "+3h", "--lead", "15", "--grace", "45", env=pod_env)
    assert out.returncode == 0, out.stderr
    assert "12 user placeholder(s) for 12 seat(s) of lab" in out.stdout, out.stdout
    assert "warning" not in out.stderr  # the lab image is pre-pulled
    assert not (state / "secrets").exists()  # the service's state: no hub secrets made there
    (plan,) = ph.read_plans(state)
    assert (plan.workshop, plan.profile, plan.seats, plan.placeholders) == ("bio101", "lab", 12, 12)
    assert plan.scale_down_at - plan.scale_up_at == timedelta(minutes=60)

    lens = SimpleNamespace(log=logging.getLogger("test-placeholders"))
    scaler = StatefulSetScale(spec.statefulset, spec.namespace, api_client=scale_api.client)
    scale_api.replicas = 2  # as helm left it
    before = plan.scale_up_at - timedelta(seconds=1)
    assert await reconcile_placeholders(lens, scaler, spec, state, now=before) == (2, 2)
    assert [q["method"] for q in scale_api.requests] == ["GET"]  # nothing to change: no PATCH
    assert await reconcile_placeholders(lens, scaler, spec, state, now=plan.scale_up_at) == (2, 14)
    get, patch = scale_api.requests[-2:]
    assert get["method"] == "GET" and get["path"] == "/apis/apps/v1/namespaces/lens/statefulsets/user-placeholder/scale"
    assert patch == {"method": "PATCH", "path": get["path"], "content_type": "application/merge-patch+json",
                     "authorization": "Bearer sa-token", "body": {"spec": {"replicas": 14}}}
    assert scale_api.replicas == 14
    # someone scaled it by hand during the class: the loop puts the plan's count back
    scale_api.replicas = 3
    assert await reconcile_placeholders(lens, scaler, spec, state, now=plan.scale_down_at - timedelta(seconds=1)) == (3, 14)
    # after start + grace: back to the chart's own count
    assert await reconcile_placeholders(lens, scaler, spec, state, now=plan.scale_down_at) == (14, 2)
    assert scale_api.requests[-1]["body"] == {"spec": {"replicas": 2}} and scale_api.replicas == 2


async def test_adapter_reads_and_patches_only_its_statefulset(scale_api):
    from jupyter_ext.clients.kube import StatefulSetScale

    scaler = StatefulSetScale("user-placeholder", "lens", api_client=scale_api.client)
    assert await scaler.replicas() == 0
    assert await scaler.scale(5) == 5
    assert scale_api.requests[-1]["body"] == {"spec": {"replicas": 5}}
    from kubernetes_asyncio.client.exceptions import ApiException

    with pytest.raises(ApiException):
        await StatefulSetScale("other", "lens", api_client=scale_api.client).scale(1)
    with pytest.raises(ValueError):
        await scaler.scale(-1)
    assert scale_api.replicas == 5


def test_the_service_runs_the_loop_only_with_the_chart_spec(monkeypatch, rendered_chart):
    from jupyter_ext.service import workshop_routes

    def registered() -> list[float]:
        periodic = []
        lens = SimpleNamespace(add_periodic=lambda sec, fn: periodic.append(sec), log=logging.getLogger("t"))
        workshop_routes.setup(lens, "/services/lens/")
        return periodic

    monkeypatch.delenv(ph.SPEC_ENV, raising=False)
    monkeypatch.setenv("LENS_WORKSHOP_EXPIRY_EVERY", "30")
    assert registered() == [30.0]  # expiry only
    monkeypatch.setenv(ph.SPEC_ENV, spec_env(rendered_chart("default").objects))
    monkeypatch.setenv("LENS_PLACEHOLDER_EVERY", "45")
    assert registered() == [30.0, 45.0]
    monkeypatch.setenv(ph.SPEC_ENV, "{}")
    with pytest.raises(ph.PlaceholderError):
        registered()
