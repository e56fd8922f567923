"""KubeProfileSpawner, offline: profile_list from the catalog, pod manifests
as dicts (validated against Kubernetes schemas), and the same 400/403 and
budget behaviour as the local spawner."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets.config import Config

from jupyter_ext.paths import packaged_config_dir
from spawners.pricing import hourly_rate
from spawners.profiles import load_catalog
from tests.k8s.conftest import make_user, pod_dict

CATALOG = load_catalog(packaged_config_dir() / "profiles.yaml")
SLUGS = [p.slug for p in CATALOG.profiles]
K8S_VERSIONS = sorted({"1.32.0", latest_version()})
GPU_SLUGS = [p.slug for p in CATALOG.profiles if p.gpu_count]
ALL_GROUPS = tuple(sorted({g for p in CATALOG.profiles for g in p.allowed_groups}))


def container(pod: dict) -> dict:
    (notebook,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return notebook


def env_of(pod: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(pod)["env"]}


def test_gpu_profile_exists_in_catalog():
    assert GPU_SLUGS, "the catalog must keep a GPU profile for these tests to mean anything"


async def test_profile_list_is_the_catalog(make_spawner):
    spawner = make_spawner()
    entries = spawner.profile_list(spawner)
    assert [e["slug"] for e in entries] == SLUGS
    assert [e["slug"] for e in entries if e["default"]] == [CATALOG.default_profile.slug]
    for entry, profile in zip(entries, CATALOG.profiles, strict=True):
        assert entry["display_name"] == profile.display_name
        assert entry["kubespawner_override"]["image"] == profile.image
        assert entry["kubespawner_override"]["default_url"] == profile.default_url


async def test_profile_list_from_config_is_ignored(make_spawner, k8s_config):
    cfg = Config(k8s_config)
    cfg.KubeSpawner.profile_list = [{"slug": "rogue", "display_name": "Rogue", "kubespawner_override": {}}]
    spawner = make_spawner(config=cfg)
    assert [e["slug"] for e in spawner.profile_list(spawner)] == SLUGS
    spawner.user_options = {"profile": "rogue"}
    with pytest.raises(web.HTTPError) as err:
        await spawner.load_user_options()
    assert err.value.status_code == 400


async def test_profile_list_assigned_at_run_time_is_refused_loudly(make_spawner):
    from traitlets import TraitError

    spawner = make_spawner()

    def hook(spawner):  # e.g. a pre_spawn_hook building profiles on the fly
        spawner.profile_list = [{"slug": "late", "display_name": "Late", "kubespawner_override": {}}]

    with pytest.raises(TraitError, match="cannot be assigned at run time.*profiles.yaml"):
        hook(spawner)
    assert [e["slug"] for e in spawner.profile_list(spawner)] == SLUGS
    with pytest.raises(TraitError):
        spawner.profile_list = lambda spawner: []


@pytest.mark.parametrize("slug", SLUGS)
async def test_pod_manifest_of_every_profile(make_spawner, slug):
    profile = CATALOG.get(slug)
    spawner = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    pod = await pod_dict(spawner, {"profile": slug})

    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == "jupyter-alice"
    assert pod["metadata"]["labels"]["lens.io/profile"] == slug
    nb = container(pod)
    assert nb["image"] == profile.image
    res = nb["resources"]
    assert float(res["requests"]["cpu"]) == profile.cpu.guarantee
    assert float(res["limits"]["cpu"]) == profile.cpu.limit
    assert int(res["requests"]["memory"]) == profile.memory.guarantee
    assert int(res["limits"]["memory"]) == profile.memory.limit
    for key, value in profile.node_selector.items():
        assert pod["spec"]["nodeSelector"][key] == value

    env = env_of(pod)
    assert env["JUPYTERHUB_DEFAULT_URL"] == profile.default_url
    assert env["LENS_PROFILE"] == slug
    assert env["LENS_SERVICE_URL"] == "http://lens-service.lens.svc.cluster.local:10101/services/lens/"
    assert env["DASK_GATEWAY__ADDRESS"] == "http://traefik-lens-dask-gateway.lens.svc.cluster.local/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://traefik-lens-dask-gateway.lens.svc.cluster.local:80"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert env["SCRATCH_BUCKET"] == "s3://lens-scratch/jupyter-alice"
    assert float(env["LENS_HOURLY_COST"]) == hourly_rate(profile)  # the catalog price of its instance type
    assert f"--ServerApp.shutdown_no_activity_timeout={profile.idle_timeout}" in nb["args"]
    assert "--HubOAuth.cache_max_age=5" in nb["args"]  # a revoked share stops working within seconds
    assert ("--YDocExtension.disable_rtc=True" in nb["args"]) is (not profile.collaboration)

    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "claim-alice"}
    assert volumes["shared-data"]["persistentVolumeClaim"] == {"claimName": "shared-data", "readOnly": True}
    mounts = {m["name"]: m for m in nb["volumeMounts"]}
    assert mounts["home"]["mountPath"] == "/home/jovyan"
    assert mounts["shared-data"] == {"name": "shared-data", "mountPath": "/home/jovyan/shared", "readOnly": True}

    for version in K8S_VERSIONS:
        # raises ValidationError (with the path) on any schema or strict-mode problem
        kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("slug", SLUGS)
async def test_gpu_only_where_asked(make_spawner, slug):
    """GPU profiles request nvidia.com/gpu and land only on GPU nodes; others never do."""
    profile = CATALOG.get(slug)
    spawner = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    pod = await pod_dict(spawner, {"profile": slug})
    res = container(pod)["resources"]
    tolerations = pod["spec"].get("tolerations") or []
    gpu_tolerated = any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule" for t in tolerations)
    selector = pod["spec"]["nodeSelector"]
    if profile.gpu_count:
        assert res["limits"]["nvidia.com/gpu"] == str(profile.gpu_count)
        assert res["requests"]["nvidia.com/gpu"] == str(profile.gpu_count)
        assert selector["lens.io/gpu-type"] == profile.gpu_type
        assert selector["lens.io/pool"] == "gpu"
        assert selector["node.kubernetes.io/instance-type"] == profile.instance_type
        assert gpu_tolerated
    else:
        assert "nvidia.com/gpu" not in res.get("limits", {})
        assert "lens.io/gpu-type" not in selector
        assert not gpu_tolerated  # the GPU nodes' taint keeps this pod off them


async def test_switching_profiles_leaves_nothing_behind(make_spawner):
    spawner = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    gpu = await pod_dict(spawner, {"profile": GPU_SLUGS[0]})
    assert "nvidia.com/gpu" in container(gpu)["resources"]["limits"]
    lab = await pod_dict(spawner, {"profile": "lab"})
    assert "nvidia.com/gpu" not in container(lab)["resources"]["limits"]
    assert "lens.io/gpu-type" not in lab["spec"]["nodeSelector"]
    assert not lab["spec"].get("tolerations")
    assert env_of(lab)["LENS_PROFILE"] == "lab"


async def test_manifests_validate_with_the_cli(make_spawner, tmp_path):
    """The same check through `kubernetes-validate --strict`, as a deployer would run it."""
    spawner = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    files = []
    for slug in SLUGS:
        path = tmp_path / f"{slug}.json"
        path.write_text(json.dumps(await pod_dict(spawner, {"profile": slug})))
        files.append(str(path))
    for version in K8S_VERSIONS:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, *files,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, out.decode()
        assert out.decode().count("INFO") == len(files)


# -- selection: the same REST behaviour as the local spawner ------------------

async def test_no_profile_means_the_default(make_spawner):
    spawner = make_spawner()
    pod = await pod_dict(spawner, {})
    assert container(pod)["image"] == CATALOG.default_profile.image


async def test_unknown_profile_is_400_through_the_hub_hook(make_spawner):
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as err:
        await spawner._run_apply_user_options({"profile": "nope"})
    assert err.value.status_code == 400
    assert "Unknown profile 'nope'" in err.value.log_message
    assert spawner.profile is None


async def test_forbidden_profile_is_403_with_a_plain_message(make_spawner):
    spawner = make_spawner(user=make_user("bob"))
    with pytest.raises(web.HTTPError) as err:
        await spawner._run_apply_user_options({"profile": GPU_SLUGS[0]})
    assert err.value.status_code == 403
    assert "limited to the groups: gpu-users" in err.value.log_message
    # kubespawner's own path (start -> load_user_options) refuses the same way
    spawner.user_options = {"profile": GPU_SLUGS[0]}
    with pytest.raises(web.HTTPError) as err:
        await spawner.load_user_options()
    assert err.value.status_code == 403


async def test_admin_may_use_any_profile(make_spawner):
    spawner = make_spawner(user=make_user("root", admin=True))
    await spawner._run_apply_user_options({"profile": GPU_SLUGS[0]})
    assert spawner.profile.slug == GPU_SLUGS[0]


async def test_form_shows_rates_and_hides_forbidden(make_spawner):
    spawner = make_spawner(user=make_user("bob"))
    assert spawner.options_form == spawner.lens_options_form
    html = await spawner.options_form(spawner)
    assert 'value="lab"' in html and "$0.096/h" in html
    assert f'value="{GPU_SLUGS[0]}"' not in html
    # every non-GPU profile is selectable on Kubernetes (no local `requires` checks)
    assert "disabled" not in html
    assert spawner.options_from_form({"profile": ["vscode"]}) == {"profile": "vscode"}


async def test_state_keeps_the_profile(make_spawner):
    spawner = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    await pod_dict(spawner, {"profile": "rstudio"})
    state = spawner.get_state()
    assert state["profile"] == "rstudio"
    other = make_spawner(user=make_user("alice", groups=ALL_GROUPS))
    other.load_state(state)
    assert other.profile.slug == "rstudio"


# -- budget gate: a real HTTP lens service stand-in on loopback ----------------

class BudgetHandler(web.RequestHandler):
    """The lens service's race-safe start gate: POST api/budget/hold."""

    def post(self):
        body = json.loads(self.request.body)
        self.application.settings["seen"].append((self.request.headers.get("Authorization"), str(body["rate"])))
        if body["user"] == "broke":
            self.set_status(403)
            self.write({"allowed": False, "message": "Your monthly budget of $50 is used up."})
        else:
            self.write({"allowed": True, "hold_id": 1})


@pytest.fixture
async def budget_service():
    seen: list = []
    app = web.Application([(r"/services/lens/api/budget/hold", BudgetHandler)], seen=seen)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/services/lens/", seen
    server.stop()


async def test_budget_gate_refuses_with_403(make_spawner, k8s_config, budget_service):
    url, seen = budget_service
    cfg = Config(k8s_config)
    cfg.KubeProfileSpawner.lens_service_url = url
    cfg.KubeProfileSpawner.lens_api_token = "gate-token"
    broke = make_spawner(user=make_user("broke"), config=cfg)
    await broke._run_apply_user_options({"profile": "lab"})
    with pytest.raises(web.HTTPError) as err:
        await broke.run_pre_spawn_hook()
    assert err.value.status_code == 403
    assert "budget of $50 is used up" in err.value.log_message
    rich = make_spawner(user=make_user("alice"), config=cfg)
    await rich._run_apply_user_options({"profile": "lab"})
    await rich.run_pre_spawn_hook()
    assert seen == [("token gate-token", "0.096"), ("token gate-token", "0.096")]


@pytest.mark.parametrize(
    "options, status",
    [({"profile": "nope"}, 400), ({"profile": "gpu"}, 403), ({"profile": 5}, 400), ({}, 200), ({"profile": "lab"}, 200)],
    ids=["unknown", "forbidden", "not-a-slug", "default", "lab"],
)
async def test_same_answers_as_the_local_spawner(make_spawner, options, status):
    """Both spawners share the mixin, so REST and form spawns get the same status and message."""
    from spawners.local import LocalProfileSpawner

    def outcome(spawner):
        async def run():
            try:
                await spawner._run_apply_user_options(options)
            except web.HTTPError as exc:
                return exc.status_code, exc.log_message
            return 200, spawner.profile.slug
        return run()

    user = make_user("bob")
    local = LocalProfileSpawner(user=user, hub=make_spawner().hub)
    kube = make_spawner(user=user)
    local_result, kube_result = await outcome(local), await outcome(kube)
    assert kube_result == local_result
    assert kube_result[0] == status
