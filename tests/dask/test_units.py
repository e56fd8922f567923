"""Pure parts of the gateway integration: options, limits, env, metering, budget."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from dask_gateway_server.backends.base import ClusterConfig

from jupyter_ext.gateway.budget import BudgetError, check_budget, parse_decision
from jupyter_ext.gateway.limits import LimitError, plan_caps
from jupyter_ext.gateway.metering import Rates, cost_microusd, live_costs, usage_intervals
from jupyter_ext.gateway.options import make_options, options_to_config, worker_gpus
from jupyter_ext.gateway.settings import GIB, GatewaySettings
from jupyter_ext.hub.dask_env import gateway_env, scratch_url
from tests.dask.support import BudgetServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings():
    return GatewaySettings(
        user_max_clusters=2,
        user_max_cores=6,
        user_max_memory_gib=8,
        scratch_bucket="",
        scratch_root="/srv/scratch",
        s3_endpoint_url="",
    )


class _User:
    name = "alice"


def test_options_schema_bounds_and_handler(settings):
    opts = make_options(settings)
    spec = {f["field"]: f for f in opts.get_specification()}
    assert set(spec) == {"worker_cores", "worker_memory", "idle_timeout"}
    assert spec["worker_cores"]["spec"]["max"] == settings.max_worker_cores
    assert spec["idle_timeout"]["default"] == 30.0
    parsed = opts.parse_options({"worker_cores": 2, "worker_memory": 1.5})
    config = opts.get_configuration(parsed, _User())
    assert config == {
        "worker_cores": 2,
        "worker_threads": 2,
        "worker_memory": int(1.5 * GIB),
        "idle_timeout": 1800.0,
    }
    ClusterConfig(**config)  # the overrides are valid ClusterConfig traits
    with pytest.raises(ValueError, match="worker_cores must be <= 4"):
        opts.parse_options({"worker_cores": 5})
    with pytest.raises(ValueError, match="Unknown fields"):
        opts.parse_options({"image": "x"})  # k8s-only field is unknown locally


def test_kubernetes_options_image_and_gpus(settings):
    settings.kubernetes = True
    settings.worker_images = ["pangeo/pangeo-notebook:2026.1", "pangeo/ml-notebook:2026.1"]
    opts = make_options(settings)
    assert {f["field"] for f in opts.get_specification()} >= {"image", "worker_gpus"}
    parsed = opts.parse_options({"image": "pangeo/ml-notebook:2026.1", "worker_gpus": 1})
    config = opts.get_configuration(parsed, _User())
    assert config["image"] == "pangeo/ml-notebook:2026.1"
    assert worker_gpus(config) == 1
    assert config["worker_extra_pod_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    with pytest.raises(ValueError, match="image"):
        opts.parse_options({"image": "evil/image"})
    with pytest.raises(ValueError, match="image must be one of"):
        options_to_config(
            {"worker_cores": 1, "worker_memory": 1, "idle_timeout": 5, "image": "evil"}, "a", settings
        )


def test_worker_memory_uses_the_lens_quantity_parser(settings):
    """A number is GiB (the widget's unit); a string is a Kubernetes quantity, as in profiles."""
    base = {"worker_cores": 1, "idle_timeout": 5}
    assert options_to_config({**base, "worker_memory": 1.5}, "a", settings)["worker_memory"] == 3 * 2**29
    assert options_to_config({**base, "worker_memory": "1536Mi"}, "a", settings)["worker_memory"] == 3 * 2**29
    assert options_to_config({**base, "worker_memory": "4G"}, "a", settings)["worker_memory"] == 4 * 10**9
    with pytest.raises(ValueError, match="worker_memory: not a size"):
        options_to_config({**base, "worker_memory": "lots"}, "a", settings)
    with pytest.raises(ValueError, match="worker_memory must be between 0.5 and 16.0 GiB, got '17Gi'"):
        options_to_config({**base, "worker_memory": "17Gi"}, "a", settings)
    with pytest.raises(ValueError, match="absurdly large"):
        options_to_config({**base, "worker_memory": 10**400}, "a", settings)


def _cfg(cores=1, memory_gib=1.0, max_cores=4, max_memory=6 * GIB, max_workers=None):
    return {
        "worker_cores": cores,
        "worker_memory": int(memory_gib * GIB),
        "scheduler_cores": 1,
        "scheduler_memory": GIB // 2,
        "cluster_max_cores": max_cores,
        "cluster_max_memory": max_memory,
        "cluster_max_workers": max_workers,
    }


def test_plan_caps_reserves_user_allowance(settings):
    first = plan_caps([], _cfg(), settings)
    assert first.cluster_max_cores == 4 and first.cluster_max_workers == 3
    second = plan_caps(
        [{"cluster_max_cores": 4, "cluster_max_memory": 6 * GIB}], _cfg(memory_gib=0.5), settings
    )
    assert second.cluster_max_cores == 2  # 6 per user - 4 reserved
    assert second.cluster_max_memory == 2 * GIB
    assert second.cluster_max_workers == 1  # (2 cores - 1 scheduler) / 1
    with pytest.raises(LimitError, match="limit is 2 per user"):
        plan_caps([{}, {}], _cfg(), settings)
    with pytest.raises(LimitError, match="Not enough cores left.*need 5 cores"):
        plan_caps([], _cfg(cores=4), settings)
    with pytest.raises(LimitError, match="Not enough memory left"):
        plan_caps([{"cluster_max_cores": 1, "cluster_max_memory": 7 * GIB}], _cfg(), settings)


def test_plan_caps_never_looser_than_the_operators_cluster_config():
    # c.ClusterConfig.cluster_max_workers/cores/memory = 2 / 3 / 6 GiB, lens's user allowance 8 / 32 GiB
    generous = GatewaySettings(user_max_cores=8, user_max_memory_gib=32)
    caps = plan_caps([], _cfg(max_cores=3, max_memory=6 * GIB, max_workers=2), generous)
    assert (caps.cluster_max_workers, caps.cluster_max_cores, caps.cluster_max_memory) == (2, 3, 6 * GIB)
    # no operator cap: the user's allowance is the cap
    caps = plan_caps([], _cfg(max_cores=None, max_memory=None), generous)
    assert (caps.cluster_max_cores, caps.cluster_max_memory) == (8, 32 * GIB)
    # an uncapped active cluster (made before lens capped it) reserves the whole allowance
    with pytest.raises(LimitError, match="Not enough cores left"):
        plan_caps([{}], _cfg(), generous)


def test_option_defaults_follow_the_operators_cluster_config():
    """c.ClusterConfig.worker_cores / worker_memory / idle_timeout are not shadowed by lens's options."""
    from traitlets.config import Config

    from jupyter_ext.gateway.options import make_options

    c = Config()
    c.ClusterConfig.worker_memory = "4 G"
    c.ClusterConfig.idle_timeout = 600
    c.LocalClusterConfig.worker_cores = 2
    opts = make_options(GatewaySettings(config=c))
    config = opts.get_configuration(opts.parse_options({}), _User())
    assert (config["worker_cores"], config["worker_memory"], config["idle_timeout"]) == (2, 4 * GIB, 600.0)
    # lens's own setting, when given, is the option's default
    c.GatewaySettings.default_worker_memory_gib = 1
    opts = make_options(GatewaySettings(config=c))
    assert opts.get_configuration(opts.parse_options({}), _User())["worker_memory"] == GIB


def test_default_limits_fit_the_default_number_of_clusters():
    """Two default clusters (user_max_clusters) fit in the default user allowance."""
    from jupyter_ext.gateway.backend import requested_caps
    from jupyter_ext.gateway.cluster_config import LensLocalClusterConfig
    from jupyter_ext.gateway.options import make_options

    defaults = GatewaySettings()
    opts = make_options(defaults)
    overrides = opts.get_configuration(opts.parse_options({}), _User())
    active = []
    for _ in range(defaults.user_max_clusters):
        config = LensLocalClusterConfig(**overrides)
        caps = plan_caps(active, requested_caps(config), defaults)
        assert caps.cluster_max_workers >= 1
        active.append({"cluster_max_cores": caps.cluster_max_cores, "cluster_max_memory": caps.cluster_max_memory})
    with pytest.raises(LimitError, match="limit is 2 per user"):
        plan_caps(active, _cfg(), defaults)


def test_gateway_env_zero_config(settings):
    env = gateway_env("alice", "http://127.0.0.1:8000/", settings)
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8000/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == "gateway://127.0.0.1:8786"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    assert env["SCRATCH_BUCKET"] == "/srv/scratch/alice"
    assert env["LENS_INTAKE_CATALOG"].endswith("hub_config/catalog.yaml")
    assert "AWS_ENDPOINT_URL" not in env
    settings.scratch_bucket = "s3://lens-data/"
    settings.s3_endpoint_url = "http://127.0.0.1:5000"
    env = gateway_env("alice", "https://hub.example.org", settings)
    assert env["SCRATCH_BUCKET"] == "s3://lens-data/scratch/alice"
    assert env["FSSPEC_S3_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert gateway_env("bob", "http://h", {"proxy_port": 9999})["DASK_GATEWAY__PROXY_ADDRESS"].endswith(":9999")
    with pytest.raises(ValueError, match="user_name"):
        scratch_url("../etc", settings)
    with pytest.raises(ValueError, match="hub_public_url"):
        gateway_env("alice", "127.0.0.1:8000", settings)


SNAPSHOT = {
    "now": 10 * 3_600_000,
    "clusters": [
        {
            "name": "c1",
            "username": "alice",
            "status": "RUNNING",
            "start_time": 0,
            "stop_time": None,
            "worker_cores": 2,
            "worker_memory": 4 * GIB,
            "worker_gpus": 0,
            "workers": [
                {"name": "w1", "start_time": 3_600_000, "stop_time": 2 * 3_600_000},
                {"name": "w2", "start_time": 3_600_000, "stop_time": None},
            ],
        },
        {
            "name": "c0",
            "username": "bob",
            "status": "STOPPED",
            "start_time": 0,
            "stop_time": 1000,
            "worker_cores": 1,
            "worker_memory": GIB,
            "workers": [{"name": "w", "start_time": 0, "stop_time": 1000}],
        },
    ],
}


def test_usage_intervals_clip_and_never_double_count():
    rates = Rates(core_hour_microusd=40_000, gib_hour_microusd=5_000)
    rate = rates.worker_rate(2, 4 * GIB)
    assert rate == 2 * 40_000 + 4 * 5_000
    whole = usage_intervals(SNAPSHOT, 0, 10 * 3_600_000, rates)
    assert {(i.cluster, i.worker) for i in whole} == {("c1", "w1"), ("c1", "w2"), ("c0", "w")}
    by = {(i.cluster, i.worker): i for i in whole}
    assert by["c1", "w1"].cost_microusd == rate  # exactly one hour
    assert by["c1", "w2"].cost_microusd == 9 * rate  # still running: up to "until"
    split = usage_intervals(SNAPSHOT, 0, 5 * 3_600_000, rates) + usage_intervals(
        SNAPSHOT, 5 * 3_600_000, 10 * 3_600_000, rates
    )
    assert sum(i.end_ms - i.start_ms for i in split) == sum(i.end_ms - i.start_ms for i in whole)
    assert sum(i.cost_microusd for i in split) == sum(i.cost_microusd for i in whole)
    assert all(isinstance(i.cost_microusd, int) for i in whole)
    assert cost_microusd(45_000, 1000) == 13  # 12.5 rounds half up
    with pytest.raises(ValueError, match="until_ms"):
        usage_intervals(SNAPSHOT, 10, 5, rates)


def test_live_costs_for_running_clusters():
    rates = Rates(40_000, 5_000)
    costs = live_costs(SNAPSHOT, rates)
    assert [c["name"] for c in costs] == ["c1"]  # the stopped cluster is not live
    c1 = costs[0]
    assert c1["workers"] == 1
    assert c1["microusd_per_hour"] == 100_000
    assert c1["accrued_microusd"] == 100_000 + 9 * 100_000
    assert c1["usd_per_hour"] == pytest.approx(0.1)


async def test_budget_check_against_a_real_http_server():
    with BudgetServer() as server:
        server.refused.add("broke")
        ok = await check_budget(server.url, "alice", token="svc")
        assert ok.allowed and ok.remaining_usd == 42.5
        assert server.calls[-1]["category"] == "dask" and server.calls[-1]["auth"] == "token svc"
        with pytest.raises(BudgetError, match="refused by budget: budget 100% used"):
            await check_budget(server.url, "broke")
        with pytest.raises(BudgetError, match="HTTP 404"):
            await check_budget(server.url + "nope/", "alice")
    with pytest.raises(BudgetError, match="budget service is unavailable"):
        await check_budget(server.url, "alice", request_timeout=2)
    with pytest.raises(BudgetError, match="invalid answer"):
        parse_decision({"allowed": "yes"})


async def test_budget_check_is_cancellable():
    with BudgetServer() as server:
        task = asyncio.ensure_future(check_budget(server.url, "alice"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_catalog_lists_shared_zarr_datasets(monkeypatch):
    import intake

    monkeypatch.setenv("SCRATCH_BUCKET", "s3://b/scratch/alice")
    monkeypatch.setenv("LENS_DATA_BUCKET", "lens-data")
    cat = intake.open_catalog(GatewaySettings().intake_catalog)
    assert set(cat.entries) == {"synthetic-climate", "scratch-climate"}
    for name in cat.entries:
        desc = cat.entries[name]
        assert desc.reader.endswith("XArrayDatasetReader")
    datas = {d.kwargs["url"] for d in cat.data.values()}
    assert datas == {
        "s3://{env(LENS_DATA_BUCKET)}/shared/synthetic-climate.zarr",
        "{env(SCRATCH_BUCKET)}/pangeo/synthetic-climate.zarr",
    }


@pytest.mark.parametrize(
    ("backend", "upstream_config"),
    [
        ("jupyter_ext.gateway.backend.LensLocalBackend", "dask_gateway_server.backends.local.LocalClusterConfig"),
        ("jupyter_ext.gateway.backend.LensUnsafeLocalBackend", "dask_gateway_server.backends.local.LocalClusterConfig"),
        ("jupyter_ext.gateway.slurm.LensSlurmBackend", "dask_gateway_server.backends.jobqueue.slurm.SlurmClusterConfig"),
        ("jupyter_ext.gateway.kube.LensKubeBackend", "dask_gateway_server.backends.kubernetes.backend.KubeClusterConfig"),
    ],
)
def test_every_lens_backend_uses_upstreams_cluster_config_with_lens_defaults(backend, upstream_config):
    """cluster_config_class is upstream's class for that backend, subclassed only for defaults."""
    from traitlets.config import Config
    from traitlets.utils.importstring import import_item

    from jupyter_ext.gateway.cluster_config import LensClusterConfigMixin

    cls = import_item(backend).class_traits()["cluster_config_class"].default_value
    cls = import_item(cls) if isinstance(cls, str) else cls
    assert issubclass(cls, import_item(upstream_config)) and issubclass(cls, LensClusterConfigMixin)
    c = Config()
    c.ClusterConfig.cluster_max_cores = 2
    assert cls(config=c).cluster_max_cores == 2 and cls().cluster_max_cores == 4


def _cluster_config_of(backend: str) -> str:
    """In a fresh interpreter: the class name of BACKEND's default cluster config,
    and whether the Kubernetes client library got imported."""
    module, name = backend.rsplit(".", 1)
    code = (
        "import sys\n"
        "from traitlets.utils.importstring import import_item\n"
        f"from {module} import {name}\n"
        f"cls = import_item({name}.class_traits()['cluster_config_class'].default_value)\n"
        "print(cls.__name__, 'kubernetes_asyncio' in sys.modules)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=REPO).stdout.strip()


def test_the_local_gateway_does_not_import_the_kubernetes_backend():
    """The local gateway's backend and its cluster config load without upstream's
    Kubernetes backend (its client library took seconds of every local start),
    while the Kubernetes backend still finds its own, loaded with it."""
    assert _cluster_config_of("jupyter_ext.gateway.backend.LensLocalBackend") == "LensLocalClusterConfig False"
    assert _cluster_config_of("jupyter_ext.gateway.slurm.LensSlurmBackend") == "LensSlurmClusterConfig False"
    assert _cluster_config_of("jupyter_ext.gateway.kube.LensKubeBackend") == "LensKubeClusterConfig True"
