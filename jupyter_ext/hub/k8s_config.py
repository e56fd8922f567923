"""The Kubernetes half of the hub configuration.

``jupyterhub_config.py`` calls ``configure_k8s(c, settings)`` when
``LENS_DEPLOYMENT=k8s``. Inside the chart it runs after z2jh's own
``jupyterhub_config.py``, which already owns the proxy, the database, the
cookie secret, authentication and the culler; this function only adds what
lens needs on Kubernetes:

- ``KubeProfileSpawner`` (entry point ``lens-kube``) with the one catalog;
- the user pods' home PVC and optional shared data PVC;
- the lens service and Dask Gateway as hub services, with their in-cluster
  URLs, and the environment user servers need to reach them.

``settings`` is the parsed lens settings mapping; its optional ``k8s``
section overrides the defaults below. Each default can also come from an
environment variable that the helm chart sets on the hub pod (``ENV``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from jupyter_ext.paths import config_file

# key: (environment variable, default)
ENV: dict[str, tuple[str, Any]] = {
    "profiles_path": ("LENS_PROFILES", str(config_file("profiles.yaml"))),
    "namespace": ("POD_NAMESPACE", "default"),
    "release": ("HELM_RELEASE_NAME", "lens"),
    "lens_service_host": ("LENS_SERVICE_HOST_NAME", "lens-service"),
    "lens_service_port": ("LENS_SERVICE_PORT_NUMBER", 10101),
    "scratch_bucket": ("LENS_SCRATCH_BUCKET", ""),
    "archive_bucket": ("LENS_ARCHIVE_BUCKET", ""),
    "home_capacity": ("LENS_HOME_CAPACITY", "10Gi"),
    "home_storage_class": ("LENS_HOME_STORAGE_CLASS", ""),
    "shared_data_claim": ("LENS_SHARED_DATA_CLAIM", ""),
    "user_service_account": ("LENS_USER_SERVICE_ACCOUNT", ""),
    "gate_token": ("LENS_GATE_TOKEN", ""),
    "gateway_token": ("LENS_GATEWAY_TOKEN", ""),
}
SETTING_KEYS = set(ENV)
# $JUPYTERHUB_API_TOKEN in user pods: JupyterHub's "server" role plus the two
# services the server calls with it (dask-gateway checks the service name).
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    "access:services!service=dask-gateway",
    "access:services!service=lens",
]


def k8s_settings(settings: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ) -> dict:
    """Defaults <- environment <- ``settings['k8s']``; unknown keys are an error."""
    section = dict((settings or {}).get("k8s") or {})
    unknown = set(section) - SETTING_KEYS
    if unknown:
        raise ValueError(
            f"lens settings: unknown k8s key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(SETTING_KEYS))}"
        )
    values = {key: environ.get(var, default) for key, (var, default) in ENV.items()}
    values.update(section)
    values["lens_service_port"] = int(values["lens_service_port"])
    return values


def service_urls(k: Mapping[str, Any]) -> dict[str, str]:
    """In-cluster addresses (the same names the chart's templates and dask-gateway's chart use)."""
    ns, release = k["namespace"], k["release"]
    lens = f"http://{k['lens_service_host']}.{ns}.svc.cluster.local:{k['lens_service_port']}"
    traefik = f"traefik-{release}-dask-gateway.{ns}.svc.cluster.local"
    return {
        "lens_service": lens,
        "lens_api": f"{lens}/services/lens/",
        "gateway_service": f"http://{traefik}",
        # Straight to traefik (the gateway's prefix is /services/dask-gateway); the
        # browser reaches dashboards through the hub's proxy (PUBLIC_ADDRESS).
        "gateway_address": f"http://{traefik}/services/dask-gateway",
        "gateway_proxy": f"gateway://{traefik}:80",
    }


def user_environment(k: Mapping[str, Any], urls: Mapping[str, str]) -> dict[str, str]:
    """Environment of every user pod.

    S3 prefixes are the pod name (``jupyter-<user>``, expanded by kubespawner):
    with EKS Pod Identity, the role's policy allows exactly
    ``<bucket>/${aws:PrincipalTag/kubernetes-pod-name}/*`` (docs/eks.md).
    """
    env = {
        "DASK_GATEWAY__ADDRESS": urls["gateway_address"],
        "DASK_GATEWAY__PROXY_ADDRESS": urls["gateway_proxy"],
        "DASK_GATEWAY__PUBLIC_ADDRESS": "/services/dask-gateway/",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
    if k["scratch_bucket"]:
        env["SCRATCH_BUCKET"] = f"s3://{k['scratch_bucket']}/{{pod_name}}"
    if k["archive_bucket"]:
        env["LENS_ARCHIVE_TARGET"] = f"s3://{k['archive_bucket']}/{{pod_name}}/"
    return env


def _set_service_url(c, name: str, url: str) -> None:
    """Give an existing hub service (declared in helm values) its in-cluster URL."""
    services = c.JupyterHub.services if "services" in c.JupyterHub else []
    services = list(services) if isinstance(services, list) else []
    for svc in services:
        if svc.get("name") == name:
            svc.setdefault("url", url)
            break
    else:
        services.append({"name": name, "url": url})
    c.JupyterHub.services = services


DASHBOARDS_PREFIX = "/services/dask-gateway/clusters/"


def configure_k8s(c, settings: Mapping[str, Any] | None = None) -> dict:
    """Set every Kubernetes-specific piece on the traitlets config ``c``; return the settings used."""
    k = k8s_settings(settings)
    urls = service_urls(k)

    c.JupyterHub.spawner_class = "lens-kube"
    spawner = c.KubeProfileSpawner
    spawner.profiles_path = k["profiles_path"]
    # An explicit command, so per-profile idle timeouts can be passed as args
    # (kubespawner drops args when it falls back to the image's command).
    spawner.cmd = ["lens-singleuser"]  # jupyterhub-singleuser plus start-time fixes (jupyter_ext.server.singleuser)
    spawner.lens_service_url = urls["lens_api"]
    spawner.lens_public_service_url = urls["lens_api"]
    spawner.extra_lens_env = user_environment(k, urls)
    # Home: one PVC per user server, created by the spawner (z2jh's
    # singleuser.storage.type is "none" so the two do not both mount one).
    spawner.storage_pvc_ensure = True
    spawner.pvc_name_template = "claim-{user_server}"
    spawner.storage_capacity = k["home_capacity"]
    spawner.storage_access_modes = ["ReadWriteOnce"]
    if k["home_storage_class"]:
        spawner.storage_class = k["home_storage_class"]
    spawner.shared_data_claim = k["shared_data_claim"]
    if "server_token_scopes" not in c.Spawner and "server_token_scopes" not in spawner:
        spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    if k["user_service_account"]:
        # IRSA: the service account's role limits S3 to the user's own prefix.
        spawner.service_account = k["user_service_account"]
        spawner.automount_service_account_token = True

    if not k["gate_token"]:
        k["gate_token"] = z2jh_secret("hub.services.lens-gate.apiToken")
    if k["gate_token"]:
        spawner.lens_api_token = k["gate_token"]

    # A user's Dask clusters stop with their server (the gateway's lens route, its own token).
    spawner.dask_gateway_url = urls["gateway_address"]
    if not k["gateway_token"]:
        k["gateway_token"] = z2jh_secret("hub.services.dask-gateway.apiToken")
    if k["gateway_token"]:
        spawner.dask_gateway_token = k["gateway_token"]

    _set_service_url(c, "lens", urls["lens_service"])
    _set_service_url(c, "dask-gateway", urls["gateway_service"])
    # Dask dashboards from outside the cluster go through the lens service, which lets
    # only a cluster's owner in (jupyter_ext/service/dashboard_routes.py; the chart sets
    # LENS_DASK_DASHBOARDS on it). Without this the hub's proxy would hand them to
    # traefik, whose dashboard routes have no authentication (docs/dask.md).
    c.Proxy.extra_routes = {DASHBOARDS_PREFIX: urls["lens_service"]}
    return k


def z2jh_secret(key: str) -> str:
    """A value from z2jh's hub secret (e.g. a generated service token); '' outside the chart."""
    try:
        from z2jh import get_secret_value  # z2jh's helper module, next to its jupyterhub_config.py
    except ImportError:
        return ""
    return get_secret_value(key, "") or ""
