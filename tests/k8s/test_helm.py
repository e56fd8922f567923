"""The umbrella chart, checked without helm or a cluster:

- every YAML file in helm/ and hub_config/ parses;
- Chart.yaml pins its two dependencies;
- upstream default values merged with ours (Helm's merge) validate against the
  upstream values schemas (shared/data/helm), and ours against our schema;
- our own templates render with Helm (helm-python-sdk bundles Helm's SDK, no
  helm binary) and validate with kubernetes-validate --strict;
- the whole chart, with the two upstream dependency charts (data beside the
  repository: shared/data/helm/charts), lints and renders with Helm, with the
  default values and with values-eks.example.yaml; every rendered object
  validates (kubernetes-validate --strict; the Traefik custom resources
  against their CRDs' schemas), and the hub, lens service and gateway pods
  get what the code reads;
- the network policy and pre-puller settings say what the issue asks;
- the hub config, loaded the way the chart loads it, selects
  KubeProfileSpawner and lists the catalog's profiles.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import sys
import textwrap
import tomllib
from importlib import import_module
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from packaging.requirements import Requirement
from traitlets.config import Config

from spawners.profiles import load_catalog
from tests.conftest import require
from tests.k8s.conftest import REPO, make_user
from tests.k8s.test_images import requirement_lines

try:
    import helm_python
    from helm_python.chart import Chart as HelmChart
except ImportError:  # a test dependency; require() fails in CI, skips locally
    helm_python = HelmChart = None

CHART = REPO / "helm" / "lens"
# shared/ sits beside the repository (as in CI); LENS_SHARED_DATA overrides.
UPSTREAM = Path(os.environ.get("LENS_SHARED_DATA", REPO.parent / "shared" / "data")) / "helm"
# The packaged dependency charts (shared/data/helm/charts/README.md); never committed.
DEPENDENCY_CHARTS = Path(os.environ.get("LENS_HELM_DEPENDENCY_CHARTS", UPSTREAM / "charts"))
CATALOG = load_catalog(REPO / "hub_config" / "profiles.yaml")
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
K8S_VERSIONS = sorted({"1.32.0", latest_version()})
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def upstream(name: str):
    path = UPSTREAM / name
    require(path.exists(), f"upstream chart data missing: {path}")
    return yaml.safe_load(path.read_text())


def helm_merge(base, override):
    """Helm's values coalescing: maps merge deeply, null deletes, the rest replaces."""
    if not (isinstance(base, dict) and isinstance(override, dict)):
        return override
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = helm_merge(base.get(key), value)
    return out


def yaml_files():
    """YAML files, not Go templates (helm/*/templates/ are rendered by Helm below)."""
    for root in (REPO / "helm", REPO / "hub_config", REPO / ".github"):
        yield from sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and "templates" not in p.parts)


@pytest.mark.parametrize("path", list(yaml_files()), ids=lambda p: str(p.relative_to(REPO)))
def test_every_yaml_file_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


def test_chart_pins_its_dependencies():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    deps = {d["name"]: d for d in chart["dependencies"]}
    assert set(deps) == {"jupyterhub", "dask-gateway"}
    for dep in deps.values():
        assert SEMVER.match(dep["version"]), f"{dep['name']} must be pinned, not {dep['version']!r}"
        assert dep["repository"].startswith("https://")
    # the dask-gateway chart version matches the stock controller image and the
    # dask-gateway-server the hub image (the gateway API server's) installs
    version = deps["dask-gateway"]["version"]
    assert VALUES["dask-gateway"]["controller"]["image"]["tag"] == version
    pins = [Requirement(line) for line in requirement_lines(REPO / "images" / "hub" / "requirements.txt")]
    servers = [r for r in pins if r.name == "dask-gateway-server"]
    assert servers and all(str(r.specifier) == f"=={version}" for r in servers)
    assert any("kubernetes" in r.extras for r in servers)  # KubeBackend's kubernetes-asyncio


def test_jupyterhub_values_validate_against_upstream_schema():
    merged = helm_merge(upstream("z2jh-values.yaml"), VALUES["jupyterhub"])
    jsonschema.validate(merged, upstream("z2jh-values.schema.yaml"))
    # jupyter_ext/hub/k8s_config.py and our template rely on z2jh's unprefixed names ("hub")
    assert merged["fullnameOverride"] == ""


def test_dask_gateway_values_validate_against_upstream_schema():
    merged = helm_merge(upstream("dask-gateway-values.yaml"), VALUES["dask-gateway"])
    jsonschema.validate(merged, upstream("dask-gateway-values.schema.yaml"))
    auth = merged["gateway"]["auth"]
    assert auth["type"] == "jupyterhub"
    assert auth["jupyterhub"]["jupyterhubServiceName"] == "dask-gateway"
    assert auth["jupyterhub"]["apiTokenFromSecretKey"] == "hub.services.dask-gateway.apiToken"
    assert merged["gateway"]["prefix"] == "/services/dask-gateway"
    assert merged["traefik"]["service"]["type"] == "ClusterIP"


def test_bad_values_are_rejected_by_the_upstream_schema():
    """The schema check has teeth: a misspelt key fails."""
    bad = helm_merge(VALUES["jupyterhub"], {"cull": {"timout": 10}})
    with pytest.raises(jsonschema.ValidationError, match="timout"):
        jsonschema.validate(helm_merge(upstream("z2jh-values.yaml"), bad), upstream("z2jh-values.schema.yaml"))


def test_our_values_validate_against_our_schema():
    jsonschema.validate(VALUES, json.loads((CHART / "values.schema.json").read_text()))


def test_hub_wiring():
    hub = VALUES["jupyterhub"]["hub"]
    assert hub["image"]["name"].endswith("/hub")
    assert hub["config"]["JupyterHub"]["spawner_class"] == "lens-kube"
    assert hub["config"]["JupyterHub"]["authenticator_class"] != "dummy"
    assert hub["extraEnv"]["LENS_DEPLOYMENT"] == "k8s"
    # lens's hub state must be on z2jh's hub PVC (/srv/jupyterhub), writable by uid 1000
    assert hub["extraEnv"]["LENS_STATE_DIR"].startswith("/srv/jupyterhub/")
    assert set(hub["services"]) >= {"lens", "lens-gate", "dask-gateway"}
    assert VALUES["jupyterhub"]["singleuser"]["storage"]["type"] == "none"  # homes come from the spawner
    assert VALUES["jupyterhub"]["cull"]["enabled"] is True


def test_pre_puller_pulls_exactly_the_catalog_images():
    images = {f"{i['name']}:{i['tag']}" for i in VALUES["jupyterhub"]["prePuller"]["extraImages"].values()}
    assert images == {p.image for p in CATALOG.profiles}
    assert VALUES["jupyterhub"]["prePuller"]["continuous"]["enabled"] is True
    # ... also on the tainted GPU nodes, which need the gpu image most
    gpu_taints = {(t["key"], t["effect"]) for p in CATALOG.profiles if p.gpu_count for t in p.tolerations}
    pre = {(t["key"], t["effect"]) for t in VALUES["jupyterhub"]["prePuller"]["extraTolerations"]}
    assert gpu_taints <= pre


def helm():
    require(helm_python is not None, "helm-python-sdk (PyPI; import helm_python) is not installed")
    return helm_python


def manifests_to_objects(manifests: dict[str, str]) -> list[dict]:
    """Helm's rendered templates (path -> text) as objects, in path order; NOTES.txt is not a manifest."""
    objs = []
    for path in sorted(manifests):
        if path.endswith((".yaml", ".yml")):
            objs.extend(d for d in yaml.safe_load_all(manifests[path]) if d)
    return objs


def render(values: dict | None = None, release: str = "lens", namespace: str = "lens") -> list[dict]:
    """Our own templates, rendered by Helm from helm/lens without its dependency
    charts (``values`` as with ``-f``: over values.yaml, checked against values.schema.json)."""
    helm()
    with HelmChart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=release, namespace=namespace, is_install=True)
    # (a local `helm dependency build` may have put the subcharts into helm/lens/charts/)
    return manifests_to_objects({p: m for p, m in manifests.items() if p.startswith("lens/templates/")})


def rendered_objects() -> list[dict]:
    return render()


def test_templates_render_to_valid_kubernetes_objects():
    objs = rendered_objects()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Role", "RoleBinding", "Service",
                     "ServiceAccount"]
    for obj in objs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    # no IRSA role by default: no empty role-arn annotation for EKS's webhook to trip on
    account = next(o for o in objs if o["kind"] == "ServiceAccount")
    assert "eks.amazonaws.com/role-arn" not in account["metadata"].get("annotations", {})
    role = "arn:aws:iam::111122223333:role/lens-service"
    account = next(o for o in render({"lens": {"roleArn": role}}) if o["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role
    # values.schema.json is applied by Helm itself
    with pytest.raises(helm_python.HelmError, match="roleArn"):
        render({"lens": {"roleArn": "not-an-arn"}})
    # a bad value is caught the same way
    broken = render({"lens": {"image": {"name": "x", "tag": "1"}}})
    deployment = next(o for o in broken if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_network_policies():
    su = VALUES["jupyterhub"]["singleuser"]
    rules = su["networkPolicy"]["egressAllowRules"]
    assert su["networkPolicy"]["enabled"] is True
    # the internet yes; private ranges and 169.254.169.254 no
    assert rules["nonPrivateIPs"] is True
    assert rules["privateIPs"] is False
    assert rules["cloudMetadataServer"] is False
    assert rules["dnsPortsCloudMetadataServer"] is False
    assert su["cloudMetadata"]["blockWithIptables"] is True
    # the hub: through z2jh's label-based rule
    assert su["extraLabels"]["hub.jupyter.org/network-access-hub"] == "true"
    # the gateway and the lens service: explicit egress to their pods
    selectors = [peer["podSelector"]["matchLabels"] for rule in su["networkPolicy"]["egress"] for peer in rule["to"]]
    assert {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": "traefik"} in selectors
    objs = {o["kind"]: o for o in rendered_objects()}
    lens_pod_labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    lens_rule = next(
        r for r in su["networkPolicy"]["egress"]
        if r["to"][0]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "lens"
    )
    assert lens_rule["to"][0]["podSelector"]["matchLabels"].items() <= lens_pod_labels.items()
    assert lens_rule["ports"][0]["port"] == objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    # and the lens service admits user servers, the hub and the proxy
    admitted = [p["podSelector"]["matchLabels"] for p in objs["NetworkPolicy"]["spec"]["ingress"][0]["from"]]
    assert {"component": "singleuser-server"} in admitted and {"component": "hub"} in admitted


# -- the hub config as the chart loads it ----------------------------------------

def run_extra_config(c: Config, config_dir: Path, monkeypatch, state_dir: Path,
                     hub_env: dict[str, str] | None = None, extra_config: dict[str, str] | None = None) -> None:
    """Run hub.extraConfig snippets in key order with a z2jh-like namespace.

    ``hub_env``: the hub pod's environment (default: values.yaml's extraEnv);
    the paths inside the image are replaced by this checkout's."""
    if hub_env is None:
        hub_env = {k: str(v) for k, v in VALUES["jupyterhub"]["hub"]["extraEnv"].items() if not isinstance(v, dict)}
        hub_env |= {"POD_NAMESPACE": "lens", "HELM_RELEASE_NAME": "lens"}
    for key in [k for k in os.environ if k.startswith("LENS_")]:
        monkeypatch.delenv(key)  # only what the pod has
    for key, value in hub_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LENS_HUB_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("LENS_STATE_DIR", str(state_dir))  # the chart's is on the hub PVC
    monkeypatch.setenv("LENS_PROFILES", str(REPO / "hub_config" / "profiles.yaml"))
    extra_config = VALUES["jupyterhub"]["hub"]["extraConfig"] if extra_config is None else extra_config
    for _, snippet in sorted(extra_config.items()):
        exec(compile(snippet, "hub.extraConfig", "exec"), {"c": c, "get_config": lambda key, default=None: default})


Z2JH_OWNED = {
    # what z2jh's jupyterhub_config.py sets before extraConfig runs, and lens must keep
    ("JupyterHub", "db_url"): "sqlite:///jupyterhub.sqlite",
    ("JupyterHub", "hub_ip"): "0.0.0.0",
    ("JupyterHub", "hub_connect_ip"): "10.100.0.10",
    ("ConfigurableHTTPProxy", "api_url"): "http://10.100.0.11:8001",
    ("ConfigurableHTTPProxy", "should_start"): False,
}


def z2jh_seeded_config() -> Config:
    """What z2jh's jupyterhub_config.py has set by the time extraConfig runs (the parts lens touches)."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    for (section, key), value in Z2JH_OWNED.items():
        c[section][key] = value
    hub = VALUES["jupyterhub"]["hub"]
    c.JupyterHub.services = [
        {"name": name, "api_token": f"token-{name}", **svc} for name, svc in hub["services"].items()
    ] + [{"name": "jupyterhub-idle-culler", "api_token": "token-culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]}]
    c.JupyterHub.load_roles = [{"name": name, **role} for name, role in hub["loadRoles"].items()] + [
        {"name": "jupyterhub-idle-culler", "scopes": ["list:users"], "services": ["jupyterhub-idle-culler"]}
    ]
    c.JupyterHub.update(hub["config"]["JupyterHub"])
    return c


def spawner_class(c: Config):
    """Resolve spawner_class the way the hub image does: through the entry point."""
    name = c.JupyterHub.spawner_class
    eps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["jupyterhub.spawners"]
    module, _, attr = eps[name].partition(":")
    return getattr(import_module(module), attr)


async def check_hub_config(c: Config) -> None:
    from spawners.kube import KubeProfileSpawner
    from tests.k8s.conftest import HUB

    cls = spawner_class(c)
    assert cls is KubeProfileSpawner
    spawner = cls(_mock=True, config=c, user=make_user("alice"), hub=HUB)
    assert [e["slug"] for e in spawner.profile_list(spawner)] == [p.slug for p in CATALOG.profiles]
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["lens"]["url"] == "http://lens-service.lens.svc.cluster.local:10101"
    assert services["lens"]["api_token"] == "token-lens"  # z2jh's entries are kept, not replaced
    assert services["dask-gateway"]["url"] == "http://traefik-lens-dask-gateway.lens.svc.cluster.local"
    assert "jupyterhub-idle-culler" in services  # z2jh's own services survive
    assert not any("command" in s for n, s in services.items() if n != "jupyterhub-idle-culler"), (
        "on Kubernetes the lens service and the gateway run in their own pods, not as hub subprocesses"
    )
    roles = {r["name"] for r in c.JupyterHub.load_roles}
    assert {"jupyterhub-idle-culler", "lens-gate", "lens-service", "user"} <= roles
    for (section, key), value in Z2JH_OWNED.items():
        assert c[section][key] == value, f"{section}.{key} belongs to z2jh on Kubernetes"
    assert "access:services!service=dask-gateway" in spawner.server_token_scopes
    assert "access:services!service=lens" in spawner.server_token_scopes


async def test_chart_hub_config_selects_kube_profile_spawner(make_spawner, monkeypatch, tmp_path):
    """hub.extraConfig runs hub_config/jupyterhub_config.py (the lead's), which calls configure_k8s."""
    config_file = REPO / "hub_config" / "jupyterhub_config.py"
    require(config_file.exists(), "hub_config/jupyterhub_config.py has not landed on this branch yet")
    c = z2jh_seeded_config()
    run_extra_config(c, REPO / "hub_config", monkeypatch, tmp_path / "state")
    await check_hub_config(c)


async def test_extra_config_snippet_runs_the_hub_config_dir(make_spawner, monkeypatch, tmp_path):
    """The snippet's mechanics, with a stand-in jupyterhub_config.py that only calls configure_k8s."""
    (tmp_path / "jupyterhub_config.py").write_text(
        textwrap.dedent(
            """
            import os
            assert os.environ["LENS_DEPLOYMENT"] == "k8s"
            from jupyter_ext.hub.k8s_config import configure_k8s
            configure_k8s(c, {})
            """
        )
    )
    c = z2jh_seeded_config()
    run_extra_config(c, tmp_path, monkeypatch, tmp_path / "state")
    await check_hub_config(c)


def test_configure_k8s_keeps_scopes_set_by_the_shared_config():
    from jupyter_ext.hub.k8s_config import configure_k8s

    c = Config()
    c.Spawner.server_token_scopes = ["users:activity!user", "custom"]
    configure_k8s(c, {})
    assert "server_token_scopes" not in c.KubeProfileSpawner
    assert c.JupyterHub.spawner_class == "lens-kube"


def test_users_may_use_the_services():
    scopes = VALUES["jupyterhub"]["hub"]["loadRoles"]["user"]["scopes"]
    assert "self" in scopes
    assert {"access:services!service=dask-gateway", "access:services!service=lens"} <= set(scopes)


def test_users_may_share_their_servers_on_kubernetes_too():
    from jupyter_ext.hub.sharing import SERVICE_SHARING_SCOPES, USER_SHARING_SCOPES

    roles = VALUES["jupyterhub"]["hub"]["loadRoles"]
    assert set(USER_SHARING_SCOPES) <= set(roles["user"]["scopes"])
    assert set(SERVICE_SHARING_SCOPES) <= set(roles["lens-service"]["scopes"])
    assert not {"read:users:name", "read:groups:name"} & set(roles["user"]["scopes"])  # no name lookups


def test_k8s_settings_reject_unknown_keys():
    from jupyter_ext.hub.k8s_config import k8s_settings

    with pytest.raises(ValueError, match="unknown k8s key 'scratch'"):
        k8s_settings({"k8s": {"scratch": "x"}}, environ={})
    assert k8s_settings({}, environ={"LENS_SCRATCH_BUCKET": "b"})["scratch_bucket"] == "b"
    assert k8s_settings({"k8s": {"scratch_bucket": "c"}}, environ={"LENS_SCRATCH_BUCKET": "b"})["scratch_bucket"] == "c"



# -- the Dask Gateway API server as the chart configures it ------------------------

def merged_gateway_values() -> dict:
    return helm_merge(upstream("dask-gateway-values.yaml"), VALUES["dask-gateway"])


def chart_gateway_config(gateway_values: dict) -> Config:
    """What the dask-gateway chart's gateway/configmap.yaml (2026.3.0) writes before
    extraConfig, for the parts lens relies on, then gateway.extraConfig in key
    order, with the chart's ``get_property`` over the gateway values."""
    properties = {"gateway": {k: v for k, v in gateway_values["gateway"].items() if k != "extraConfig"}}

    def get_property(key, default=None):
        value = properties
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    c = Config()
    c.DaskGateway.address = ":8000"
    c.DaskGateway.backend_class = "dask_gateway_server.backends.kubernetes.KubeBackend"
    c.KubeBackend.gateway_instance = "lens-dask-gateway"
    c.KubeClusterConfig.image = f"{get_property('gateway.backend.image.name')}:{get_property('gateway.backend.image.tag')}"
    for field, prop in [("scheduler_cores", "scheduler.cores.request"), ("scheduler_memory", "scheduler.memory.request"),
                        ("worker_cores", "worker.cores.request"), ("worker_memory", "worker.memory.request"),
                        ("worker_memory_limit", "worker.memory.limit"), ("worker_threads", "worker.threads")]:
        value = get_property("gateway.backend." + prop)
        if value is not None:
            setattr(c.KubeClusterConfig, field, value)
    assert get_property("gateway.auth.type") == "jupyterhub"
    c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
    c.DaskGateway.JupyterHubAuthenticator.jupyterhub_api_url = get_property("gateway.auth.jupyterhub.apiUrl")
    extra = gateway_values["gateway"]["extraConfig"]
    assert isinstance(extra, dict), "extraConfig as a map (merges across values files)"
    for key in sorted(extra):
        exec(compile(extra[key], f"gateway.extraConfig.{key}", "exec"), {"c": c, "get_property": get_property})
    return c


def test_the_gateway_api_server_runs_the_hub_image():
    merged = merged_gateway_values()
    hub_image = VALUES["jupyterhub"]["hub"]["image"]
    assert merged["gateway"]["image"]["name"] == hub_image["name"] == VALUES["lens"]["image"]["name"]
    assert merged["gateway"]["image"]["tag"] == hub_image["tag"]
    assert merged["controller"]["image"]["name"] == "ghcr.io/dask/dask-gateway-server"
    # schedulers and workers: the notebook image (the pre-puller pulls it)
    backend_image = merged["gateway"]["backend"]["image"]
    assert {"name": backend_image["name"], "tag": backend_image["tag"]} in VALUES["jupyterhub"]["prePuller"]["extraImages"].values()


async def test_gateway_extra_config_selects_lens_kube_backend(monkeypatch):
    from dask_gateway_server.auth import JupyterHubAuthenticator
    from dask_gateway_server.backends.kubernetes import KubeBackend
    from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
    from dask_gateway_server.models import User
    from traitlets.utils.importstring import import_item

    from jupyter_ext.gateway.kube import LensKubeBackend, with_heartbeat
    from tests.dask.support import BudgetServer

    merged = merged_gateway_values()
    c = chart_gateway_config(merged)
    cls = import_item(c.DaskGateway.backend_class)
    assert cls is LensKubeBackend and issubclass(cls, KubeBackend)
    auth = import_item(c.DaskGateway.authenticator_class)
    assert issubclass(auth, JupyterHubAuthenticator) and auth.__module__.startswith("jupyter_ext.")
    assert c.JupyterHubAuthenticator.jupyterhub_service_name == "dask-gateway"
    assert c.GatewaySettings.kubernetes is True
    backend_image = merged["gateway"]["backend"]["image"]
    notebook = f"{backend_image['name']}:{backend_image['tag']}"
    assert list(c.GatewaySettings.worker_images) == [notebook]
    # the lens service as the chart names it (hub extraEnv, our Service)
    hub_env = VALUES["jupyterhub"]["hub"]["extraEnv"]
    service = next(o for o in rendered_objects() if o["kind"] == "Service")
    assert service["metadata"]["name"] == hub_env["LENS_SERVICE_HOST_NAME"]
    assert service["spec"]["ports"][0]["port"] == int(hub_env["LENS_SERVICE_PORT_NUMBER"])
    assert c.GatewaySettings.lens_service_url == (
        f"http://{hub_env['LENS_SERVICE_HOST_NAME']}:{hub_env['LENS_SERVICE_PORT_NUMBER']}/services/lens/"
    )

    # the backend as dask-gateway-server builds it from this config (the chart's
    # secret arrives as JUPYTERHUB_API_TOKEN, the lens routes' token)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "gateway-token")
    with BudgetServer() as budget:
        c.GatewaySettings.lens_service_url = budget.url  # not resolvable here: a local stand-in service
        backend = cls(config=c)
        assert backend.admin_api_token == "gateway-token"
        assert backend.scheduler_heartbeat_period == 15.0 and backend.cluster_usage_max_age == 86400.0
        options = await backend.get_cluster_options(User("alice"))
        spec = {f["field"]: f for f in options.get_specification()}
        assert {"worker_cores", "worker_memory", "idle_timeout", "image", "worker_gpus"} <= set(spec)
        assert spec["image"]["spec"]["options"] == [notebook]
        assert spec["idle_timeout"]["default"] == 30.0 and spec["worker_gpus"]["spec"]["max"] >= 1
        _, config = await backend.process_cluster_options(
            User("alice"), {"worker_cores": 2, "worker_memory": 3, "idle_timeout": 45, "worker_gpus": 1}
        )
        assert budget.calls and budget.calls[-1]["auth"] == "token gateway-token"
    assert isinstance(config, KubeClusterConfig)
    assert (config.worker_cores, config.worker_memory, config.idle_timeout) == (2, 3 * 2**30, 45 * 60.0)
    assert config.image == notebook
    assert config.worker_extra_container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert config.worker_cmd == ["dask", "worker"]
    assert config.scheduler_cmd == with_heartbeat(["dask", "scheduler"], 15.0)
    # the chart's own resource settings still apply underneath lens's options
    assert config.scheduler_cores == merged["gateway"]["backend"]["scheduler"]["cores"]["request"]
    # the chart's lens-limits (c.ClusterConfig) hold: lens's user limits only lower them
    assert config.cluster_max_cores <= c.ClusterConfig.cluster_max_cores
    assert config.cluster_max_workers <= c.ClusterConfig.cluster_max_workers


def test_lens_service_meters_the_gateway_with_its_token():
    from jupyter_ext.hub.k8s_config import k8s_settings, service_urls

    objs = {o["kind"]: o for o in rendered_objects()}
    env = {e["name"]: e for e in objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    jh = merged_gateway_values()["gateway"]["auth"]["jupyterhub"]
    # the same secret key the dask-gateway chart hands the gateway pod as JUPYTERHUB_API_TOKEN
    assert env["LENS_GATEWAY_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": jh["apiTokenFromSecretName"], "key": jh["apiTokenFromSecretKey"]}
    urls = service_urls(k8s_settings({"k8s": {"namespace": "lens", "release": "lens"}}, environ={}))
    assert env["LENS_GATEWAY_URL"]["value"] == urls["gateway_address"]
    # it fronts the dashboards the hub's proxy sends it (jupyter_ext/service/dashboard_routes.py)
    assert env["LENS_DASK_DASHBOARDS"]["value"] == "/services/dask-gateway/clusters/"
    assert env["LENS_GATEWAY_URL"]["value"].endswith(merged_gateway_values()["gateway"]["prefix"])
    # another release and namespace: the names follow
    other = {o["kind"]: o for o in render(release="r2", namespace="ns2")}
    env2 = {e["name"]: e for e in other["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env2["LENS_GATEWAY_URL"]["value"] == "http://traefik-r2-dask-gateway.ns2.svc.cluster.local/services/dask-gateway"
    # the gateway pod may reach the lens service (budget check)
    admitted = [p["podSelector"]["matchLabels"] for p in objs["NetworkPolicy"]["spec"]["ingress"][0]["from"]]
    assert {"app.kubernetes.io/name": "dask-gateway", "app.kubernetes.io/component": "gateway"} in admitted


# -- the whole chart, rendered by Helm with its two dependency charts -------------

EKS_VALUES = CHART / "values-eks.example.yaml"
VALUE_SETS = ["default", "eks"]
# kubernetes-validate knows Kubernetes' own kinds only. These custom resources
# (the dask-gateway chart's Traefik routes) are the known exceptions: they are
# validated against the openAPIV3Schema of the CRDs the same chart installs.
TRAEFIK_CUSTOM_RESOURCES = {("traefik.io/v1alpha1", "IngressRoute"), ("traefik.io/v1alpha1", "Middleware")}


def dependency_archives() -> list[Path]:
    deps = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    return [DEPENDENCY_CHARTS / f"{d['name']}-{d['version']}.tgz" for d in deps]


def build_chart_dir(tmp_path_factory) -> Path:
    """helm/lens with charts/ holding the expanded dependency charts, in a temporary copy
    (the session's ``chart_dir`` fixture, tests/k8s/conftest.py)."""
    missing = [str(p) for p in dependency_archives() if not p.exists()]
    require(not missing, f"dependency charts missing: {', '.join(missing)} (see shared/data/helm/charts/README.md; "
                         "LENS_HELM_DEPENDENCY_CHARTS overrides the directory)")
    helm()
    chart = tmp_path_factory.mktemp("chart") / "lens"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
    (chart / "charts").mkdir()
    for archive in dependency_archives():
        helm_python.expand(chart / "charts", archive)  # a directory, so lint can descend into it
    return chart


def eks_values() -> dict:
    values = yaml.safe_load(EKS_VALUES.read_text())
    # plus the catalog from a file instead of the image (docs/eks.md, "Install": --set-file)
    values["jupyterhub"]["hub"]["extraFiles"] = {"lens-profiles": {
        "mountPath": VALUES["jupyterhub"]["hub"]["extraEnv"]["LENS_PROFILES"],
        "stringData": (REPO / "hub_config" / "profiles.yaml").read_text(),
    }}
    return values


def user_values(value_set: str) -> dict:
    return {"default": dict, "eks": eks_values}[value_set]()


class Rendered:
    def __init__(self, objects: list[dict], crds: list[dict], values: dict):
        self.objects, self.crds, self.values = objects, crds, values
        self.index: dict[tuple[str, str], dict] = {}
        for obj in objects:
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in self.index, f"two {key[0]}s named {key[1]}"
            self.index[key] = obj

    def get(self, kind: str, name: str) -> dict:
        return self.index[(kind, name)]

    def secret_keys(self, name: str) -> set[str]:
        secret = self.get("Secret", name)
        return set(secret.get("data") or {}) | set(secret.get("stringData") or {})

    def secret_value(self, name: str, key: str) -> str:
        secret = self.get("Secret", name)
        if key in (secret.get("stringData") or {}):
            return secret["stringData"][key]
        return base64.b64decode(secret["data"][key]).decode()


def rendered_chart_getter(chart_dir: Path):
    """value set -> Rendered, each rendered once (the session's ``rendered_chart`` fixture)."""
    cache: dict[str, Rendered] = {}

    def get(value_set: str) -> Rendered:
        if value_set not in cache:
            values = user_values(value_set)
            with HelmChart.load(chart_dir) as chart:
                manifests = chart.render(values, name="lens", namespace="lens", is_install=True)
                merged = chart.merge_values(values)
                crds = [d for crd in chart.crds for d in yaml.safe_load_all(crd["data"]) if d]
            cache[value_set] = Rendered(manifests_to_objects(manifests), crds, merged)
        return cache[value_set]

    return get


def container(obj: dict, name: str) -> dict:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_lints_with_its_subcharts(chart_dir, value_set):
    values = user_values(value_set)
    report = helm_python.lint(chart_dir, values, with_subcharts=True, strict=True, namespace="lens",
                              kube_version="v1.32.0")
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2], report
    # Helm's SDK lints only the umbrella chart itself: lint each subchart with its section too
    for sub in ("jupyterhub", "dask-gateway"):
        section = helm_merge(VALUES[sub], values.get(sub, {}))
        report = helm_python.lint(chart_dir / "charts" / sub, section, strict=True, namespace="lens",
                                  kube_version="v1.32.0")
        assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2], (sub, report)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_renders_to_valid_kubernetes_objects(rendered_chart, value_set):
    r = rendered_chart(value_set)
    failures, custom = [], []
    for obj in r.objects + r.crds:
        if (obj["apiVersion"], obj["kind"]) in TRAEFIK_CUSTOM_RESOURCES:
            custom.append(obj)
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                failures.append(f"{obj['kind']}/{obj['metadata']['name']} ({version}): {exc}")
    assert not failures, "\n".join(failures)
    # the exceptions: no Kubernetes schema (or the list above must shrink), but their CRD's schema
    crd_schemas = {
        (f"{crd['spec']['group']}/{v['name']}", crd["spec"]["names"]["kind"]): v["schema"]["openAPIV3Schema"]
        for crd in r.crds for v in crd["spec"]["versions"]
    }
    for obj in custom:
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(obj, K8S_VERSIONS[0], strict=True)
        jsonschema.validate(obj, crd_schemas[(obj["apiVersion"], obj["kind"])])
    assert {(o["apiVersion"], o["kind"]) for o in custom} == TRAEFIK_CUSTOM_RESOURCES
    print(f"{value_set}: {len(r.objects)} objects rendered, {len(r.objects) - len(custom)} valid "
          f"(kubernetes-validate --strict, {', '.join(K8S_VERSIONS)}), {len(custom)} Traefik custom "
          f"resources valid against their CRDs; {len(r.crds)} CRDs valid")
    # all three parts are there
    for kind, name in [("Deployment", "hub"), ("Deployment", "proxy"), ("Deployment", "lens-service"),
                       ("Deployment", "api-lens-dask-gateway"), ("Deployment", "traefik-lens-dask-gateway"),
                       ("Secret", "hub"), ("Service", "lens-service")]:
        assert (kind, name) in r.index


@pytest.mark.parametrize("value_set", VALUE_SETS)
async def test_rendered_hub_pod_gets_what_the_hub_config_reads(rendered_chart, value_set, make_spawner,
                                                                monkeypatch, tmp_path):
    from tests.k8s.test_images import dockerfile, instructions

    r = rendered_chart(value_set)
    hub = r.get("Deployment", "hub")
    pod = hub["spec"]["template"]["spec"]
    c = container(hub, "hub")
    env = env_of(c)
    image = r.values["jupyterhub"]["hub"]["image"]
    assert c["image"] == f"{image['name']}:{image['tag']}" and image["name"] == r.values["lens"]["image"]["name"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # z2jh's config file, where the hub image's CMD expects it
    cmd = next(json.loads(rest) for word, rest in instructions(dockerfile("hub")) if word == "CMD")
    assert c["args"][:3] == cmd[:3] and cmd[2] in mounts
    # hub_config: the image's copy, where LENS_HUB_CONFIG_DIR says
    docker_env = " ".join(rest for word, rest in instructions(dockerfile("hub")) if word == "ENV")
    config_dir = env["LENS_HUB_CONFIG_DIR"]["value"]
    assert f"LENS_HUB_CONFIG_DIR={config_dir}" in docker_env
    assert ("COPY", f"hub_config {config_dir}") in instructions(dockerfile("hub"))
    # the catalog: the image's, or a file mounted over it (EKS: --set-file)
    profiles = env["LENS_PROFILES"]["value"]
    if profiles in mounts:
        mount = mounts[profiles]
        volume = volumes[mount["name"]]
        assert volume["secret"]["secretName"] == "hub"
        assert r.secret_value("hub", mount["subPath"]) == (REPO / "hub_config" / "profiles.yaml").read_text()
    else:
        assert value_set == "default"
        assert Path(profiles).parent == Path(config_dir) and (REPO / "hub_config" / Path(profiles).name).exists()
    # the lens service as the chart names it
    service = r.get("Service", env["LENS_SERVICE_HOST_NAME"]["value"])
    assert service["spec"]["ports"][0]["port"] == int(env["LENS_SERVICE_PORT_NUMBER"]["value"])
    # the tokens configure_k8s and z2jh give the services, generated into the hub Secret
    keys = r.secret_keys("hub")
    for name in r.values["jupyterhub"]["hub"]["services"]:
        assert f"hub.services.{name}.apiToken" in keys
    # the extraConfig z2jh runs is ours (z2jh reads it from the Secret's values.yaml)
    secret_values = yaml.safe_load(r.secret_value("hub", "values.yaml"))
    assert secret_values["hub"]["extraConfig"] == VALUES["jupyterhub"]["hub"]["extraConfig"]
    # the hub and the lens service share the lens database (password accounts, workshop roles)
    lens_env = env_of(container(r.get("Deployment", "lens-service"), "lens-service"))
    assert env["LENS_DB_URL"] == lens_env["LENS_DB_URL"]

    # the hub config, run with the rendered pod's environment (secrets stay unset)
    pod_env = {name: e["value"] for name, e in env.items() if "value" in e}
    pod_env |= {"POD_NAMESPACE": "lens"}  # a fieldRef in the pod
    cfg = z2jh_seeded_config()
    run_extra_config(cfg, REPO / "hub_config", monkeypatch, tmp_path / "state", hub_env=pod_env,
                     extra_config=secret_values["hub"]["extraConfig"])
    await check_hub_config(cfg)
    spawner = cfg.KubeProfileSpawner
    assert spawner.storage_capacity == pod_env["LENS_HOME_CAPACITY"]
    # the Dask dashboards through the lens service (the same in-cluster URL as its service route)
    lens_url = next(s["url"] for s in cfg.JupyterHub.services if s["name"] == "lens")
    assert cfg.Proxy.extra_routes == {"/services/dask-gateway/clusters/": lens_url}
    if value_set == "eks":
        assert cfg.JupyterHub.authenticator_class == "jupyter_ext.hub.oidc.LensOAuthenticator"
        assert cfg.GenericOAuthenticator.client_id == pod_env["LENS_OIDC_CLIENT_ID"]
        assert cfg.GenericOAuthenticator.username_claim == pod_env["LENS_OIDC_USERNAME_CLAIM"]
        assert spawner.storage_class == pod_env["LENS_HOME_STORAGE_CLASS"]
        assert spawner.service_account == pod_env["LENS_USER_SERVICE_ACCOUNT"]
        assert spawner.extra_lens_env["SCRATCH_BUCKET"] == f"s3://{pod_env['LENS_SCRATCH_BUCKET']}/{{pod_name}}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_lens_service_pod(rendered_chart, value_set):
    from jupyter_ext.hub.k8s_config import k8s_settings, service_urls

    r = rendered_chart(value_set)
    deployment = r.get("Deployment", "lens-service")
    c = container(deployment, "lens-service")
    env = env_of(c)
    image = r.values["lens"]["image"]
    assert c["image"] == f"{image['name']}:{image['tag']}"
    assert c["command"][:2] == ["python", "-m"] and importlib.util.find_spec(c["command"][2]) is not None
    # secrets it reads exist in z2jh's hub Secret
    keys = r.secret_keys("hub")
    for name in ("JUPYTERHUB_API_TOKEN", "LENS_GATEWAY_TOKEN"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "hub" and ref["key"] in keys
    assert env["JUPYTERHUB_SERVICE_NAME"]["value"] in r.values["jupyterhub"]["hub"]["services"]
    hub_service = r.get("Service", "hub")
    assert env["JUPYTERHUB_API_URL"]["value"] == f"http://hub:{hub_service['spec']['ports'][0]['port']}/hub/api"
    # the gateway through the rendered traefik Service (port 80), under the gateway's prefix
    traefik = r.get("Service", "traefik-lens-dask-gateway")
    assert [p["port"] for p in traefik["spec"]["ports"]] == [80]
    urls = service_urls(k8s_settings({"k8s": {"namespace": "lens", "release": "lens"}}, environ={}))
    assert env["LENS_GATEWAY_URL"]["value"] == urls["gateway_address"]
    # it fronts the dashboards the hub's proxy sends it (jupyter_ext/service/dashboard_routes.py)
    assert env["LENS_DASK_DASHBOARDS"]["value"] == "/services/dask-gateway/clusters/"
    assert urls["gateway_address"] == (f"http://{traefik['metadata']['name']}.lens.svc.cluster.local"
                                       f"{r.values['dask-gateway']['gateway']['prefix']}")
    # its volume and service account
    claim = deployment["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in r.index
    account = r.get("ServiceAccount", deployment["spec"]["template"]["spec"]["serviceAccountName"])
    annotations = account["metadata"].get("annotations") or {}
    assert annotations.get("eks.amazonaws.com/role-arn", "") == r.values["lens"]["roleArn"]
    assert bool(r.values["lens"]["roleArn"]) == (value_set == "eks")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_gateway_runs_lens_config(rendered_chart, value_set, monkeypatch):
    """The dask-gateway chart's own dask_gateway_config.py, as rendered, with our extraConfig in it."""
    from dask_gateway_server.auth import JupyterHubAuthenticator
    from traitlets.utils.importstring import import_item

    from jupyter_ext.gateway.kube import LensKubeBackend

    r = rendered_chart(value_set)
    api = r.get("Deployment", "api-lens-dask-gateway")
    c = container(api, "gateway")
    env = env_of(c)
    hub_image = r.values["jupyterhub"]["hub"]["image"]
    assert c["image"] == f"{hub_image['name']}:{hub_image['tag']}"
    # its hub token: the dask-gateway service's, the same key the lens service meters with
    ref = env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "hub" and ref["key"] == "hub.services.dask-gateway.apiToken" in r.secret_keys("hub")
    lens_env = env_of(container(r.get("Deployment", "lens-service"), "lens-service"))
    assert lens_env["LENS_GATEWAY_TOKEN"]["valueFrom"]["secretKeyRef"] == ref
    # workers' scratch bucket: the same as the hub's
    hub_env = env_of(container(r.get("Deployment", "hub"), "hub"))
    assert env["LENS_SCRATCH_BUCKET"]["value"] == hub_env["LENS_SCRATCH_BUCKET"]["value"]
    # the config file: the mounted ConfigMap's, run as dask-gateway-server runs it
    config_path = Path(c["args"][c["args"].index("--config") + 1])
    mount = next(m for m in c["volumeMounts"] if config_path.is_relative_to(m["mountPath"]))
    volume = next(v for v in api["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    source = r.get("ConfigMap", volume["configMap"]["name"])["data"][config_path.name]
    for key in VALUES["dask-gateway"]["gateway"]["extraConfig"]:
        assert f"# From gateway.extraConfig.{key}" in source
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file inserts its own directory
    cfg = Config()
    exec(compile(source, str(config_path), "exec"), {"c": cfg, "__file__": str(config_path)})
    assert import_item(cfg.DaskGateway.backend_class) is LensKubeBackend
    assert issubclass(import_item(cfg.DaskGateway.authenticator_class), JupyterHubAuthenticator)
    # the hub service it checks tokens against, with the role the chart gives it
    service_name = cfg.JupyterHubAuthenticator.jupyterhub_service_name
    assert service_name == "dask-gateway" and service_name in r.values["jupyterhub"]["hub"]["services"]
    assert service_name in r.values["jupyterhub"]["hub"]["loadRoles"]["dask-gateway"]["services"]
    hub_port = r.get("Service", "hub")["spec"]["ports"][0]["port"]
    assert cfg.JupyterHubAuthenticator.jupyterhub_api_url == f"http://hub:{hub_port}/hub/api"
    lens = r.get("Service", "lens-service")
    assert cfg.GatewaySettings.lens_service_url == f"http://lens-service:{lens['spec']['ports'][0]['port']}/services/lens/"
    backend = r.values["dask-gateway"]["gateway"]["backend"]
    assert list(cfg.GatewaySettings.worker_images) == [f"{backend['image']['name']}:{backend['image']['tag']}"]
    assert cfg.KubeClusterConfig.worker_extra_pod_config == backend["worker"].get("extraPodConfig", {})
    assert cfg.ClusterConfig.cluster_max_workers == 50
    assert cfg.KubeBackend.api_url == f"http://api-lens-dask-gateway.lens:{r.get('Service', 'api-lens-dask-gateway')['spec']['ports'][0]['port']}/api"
    # and dask-gateway-server accepts it
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "gateway-token")
    assert LensKubeBackend(config=cfg).admin_api_token == "gateway-token"


def matches(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_network_policies_admit_the_pods_that_talk(rendered_chart, value_set):
    """Label selectors against the labels the rendered pods really carry."""
    r = rendered_chart(value_set)

    def labels(name: str) -> dict:
        return r.get("Deployment", name)["spec"]["template"]["metadata"]["labels"]

    def ingress_peers(policy: str) -> list[dict]:
        return [p["podSelector"]["matchLabels"] for rule in r.get("NetworkPolicy", policy)["spec"].get("ingress", [])
                for p in rule.get("from", []) if "podSelector" in p]

    def egress_peers(policy: str) -> list[dict]:
        return [p["podSelector"]["matchLabels"] for rule in r.get("NetworkPolicy", policy)["spec"].get("egress", [])
                for p in rule.get("to", []) if "podSelector" in p]

    lens_in = ingress_peers("lens-service")
    for caller in ("hub", "proxy", "api-lens-dask-gateway"):
        assert any(matches(s, labels(caller)) for s in lens_in), f"{caller} may not call the lens service"
    hub_in = ingress_peers("hub")
    for caller in ("lens-service", "api-lens-dask-gateway"):
        assert any(matches(s, labels(caller)) for s in hub_in), f"{caller} may not call the hub API"
    user_out = egress_peers("singleuser")
    for callee in ("lens-service", "traefik-lens-dask-gateway", "hub"):
        assert any(matches(s, labels(callee)) for s in user_out), f"user servers may not reach {callee}"
    assert matches(r.get("NetworkPolicy", "lens-service")["spec"]["podSelector"]["matchLabels"], labels("lens-service"))
