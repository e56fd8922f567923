"""Kubernetes tests run with no cluster: a dummy kubeconfig, mock spawners.

kubernetes_asyncio reads KUBECONFIG when it is imported, so it is set here,
before anything imports kubespawner (docs/platform-facts.md).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
_DUMMY_DIR = Path(tempfile.mkdtemp(prefix="lens-kubeconfig-"))
DUMMY_KUBECONFIG = _DUMMY_DIR / "config"
DUMMY_KUBECONFIG.write_text(
    """apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: not-a-real-token}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: lens}}]
current-context: offline
"""
)
if "kubernetes_asyncio" not in sys.modules:
    os.environ["KUBECONFIG"] = str(DUMMY_KUBECONFIG)


class Group:
    def __init__(self, name: str):
        self.name = name


def make_user(name: str = "alice", groups: tuple[str, ...] = (), admin: bool = False):
    return SimpleNamespace(
        name=name, id=7, url=f"/user/{name}/", groups=[Group(g) for g in groups], admin=admin
    )


HUB = SimpleNamespace(
    public_host="",
    url="http://hub:8081/hub/",
    base_url="/hub/",
    api_url="http://hub.lens.svc.cluster.local:8081/hub/api",
)


@pytest.fixture
def k8s_config():
    """The hub config exactly as configure_k8s builds it for the chart."""
    from traitlets.config import Config

    from jupyter_ext.hub.k8s_config import configure_k8s

    c = Config()
    configure_k8s(
        c,
        {"k8s": {"namespace": "lens", "release": "lens", "scratch_bucket": "lens-scratch",
                 "shared_data_claim": "shared-data"}},
    )
    return c


@pytest.fixture
def make_spawner(k8s_config, monkeypatch):
    """Build KubeProfileSpawner(_mock=True) inside the running loop (async tests only)."""
    import kubernetes_asyncio.config
    from kubernetes_asyncio.config import kube_config

    if not Path(os.path.expanduser(kube_config.KUBE_CONFIG_DEFAULT_LOCATION)).exists():
        # Another test module imported kubernetes_asyncio before this conftest
        # could set KUBECONFIG: point its default (read at import) at the dummy,
        # as kubernetes_asyncio's own tests do.
        for module in (kube_config, kubernetes_asyncio.config):
            monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(DUMMY_KUBECONFIG))
    from spawners.kube import KubeProfileSpawner

    def make(user=None, config=None, **kwargs):
        return KubeProfileSpawner(
            _mock=True, config=config or k8s_config, user=user or make_user(), hub=HUB, **kwargs
        )

    return make


async def pod_dict(spawner, options: dict) -> dict:
    from kubernetes_asyncio.client import ApiClient

    spawner.user_options = options
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


@pytest.fixture(scope="session")
def chart_dir(tmp_path_factory):
    """helm/lens plus its dependency charts, ready for Helm (tests/k8s/test_helm.py)."""
    from tests.k8s.test_helm import build_chart_dir

    return build_chart_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def rendered_chart(chart_dir):
    """value set ("default", "eks") -> the whole chart rendered by Helm, once per session."""
    from tests.k8s.test_helm import rendered_chart_getter

    return rendered_chart_getter(chart_dir)
