"""Every lens-specific Dask Gateway setting, as one traitlets Configurable.

The gateway config file (``hub_config/dask_gateway_config.py``) sets these as
``c.GatewaySettings.<name>``; the spawner builds the same class from the hub's
config to compute a user server's environment (``env.gateway_env``).
"""

from __future__ import annotations

import os

from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Configurable

from ..constants import DASK

GIB = 2**30
# dask-gateway's ClusterConfig and its backends' subclasses, most specific last
CLUSTER_CONFIG_SECTIONS = (
    "ClusterConfig",
    "LocalClusterConfig",
    "JobQueueClusterConfig",
    "SlurmClusterConfig",
    "KubeClusterConfig",
)


class GatewaySettings(Configurable):
    """lens settings for Dask Gateway: limits, options, idle culling, rates, data."""

    # --- addresses -------------------------------------------------------
    service_name = Unicode(
        "dask-gateway",
        help="Name of the gateway as a JupyterHub service (URL /services/<name>/).",
        config=True,
    )
    gateway_port = Integer(
        help="Port of the gateway's public HTTP proxy on 127.0.0.1 (env LENS_GATEWAY_PORT).",
        config=True,
    )

    @default("gateway_port")
    def _default_gateway_port(self):
        return int(os.environ.get("LENS_GATEWAY_PORT", "8010"))

    proxy_port = Integer(
        help="Port of the gateway's scheduler (TCP/TLS) proxy (env LENS_GATEWAY_PROXY_PORT).",
        config=True,
    )

    @default("proxy_port")
    def _default_proxy_port(self):
        return int(os.environ.get("LENS_GATEWAY_PROXY_PORT", "8786"))

    proxy_host = Unicode(
        "127.0.0.1",
        help="Host user servers use to reach the scheduler proxy (gateway://HOST:PORT).",
        config=True,
    )

    # --- per-worker option bounds -----------------------------------------
    default_worker_cores = Integer(
        help="Default of the worker cores option (default: the operator's "
        "c.ClusterConfig.worker_cores if set, else 1).",
        config=True,
    )

    @default("default_worker_cores")
    def _default_default_worker_cores(self):
        value = self.cluster_config_value("worker_cores")
        return 1 if value is None else max(1, int(value))

    max_worker_cores = Integer(4, help="Upper bound of the worker cores option.", config=True)
    default_worker_memory_gib = Float(
        help="Default of the worker memory option, GiB (default: the operator's "
        "c.ClusterConfig.worker_memory if set, else 2).",
        config=True,
    )

    @default("default_worker_memory_gib")
    def _default_default_worker_memory_gib(self):
        value = self.cluster_config_value("worker_memory")
        return 2.0 if value is None else value / GIB

    min_worker_memory_gib = Float(0.5, help="Lower bound of the worker memory option (GiB).", config=True)
    max_worker_memory_gib = Float(16.0, help="Upper bound of the worker memory option (GiB).", config=True)
    worker_images = List(
        Unicode(),
        ["pangeo/pangeo-notebook:latest"],
        help="Worker images users may pick (Kubernetes only); the first is the default.",
        config=True,
    )
    max_worker_gpus = Integer(1, help="Upper bound of GPUs per worker (Kubernetes only).", config=True)
    kubernetes = Bool(
        False,
        help="Offer the Kubernetes-only options (worker image, GPUs).",
        config=True,
    )

    # --- idle culling -------------------------------------------------------
    idle_timeout_minutes = Float(
        help="Default of the idle timeout option, in minutes (default: the operator's "
        "c.ClusterConfig.idle_timeout if set and not 0, else 30).",
        config=True,
    )

    @default("idle_timeout_minutes")
    def _default_idle_timeout_minutes(self):
        value = self.cluster_config_value("idle_timeout")
        return 30.0 if not value else value / 60.0

    min_idle_timeout_minutes = Float(
        1.0, help="Smallest idle timeout a user may choose, in minutes.", config=True
    )
    max_idle_timeout_minutes = Float(
        480.0,
        help="Largest idle timeout a user may choose, in minutes (no cluster lives idle forever).",
        config=True,
    )

    # --- per-user and per-cluster limits -------------------------------------
    user_max_clusters = Integer(2, help="Active clusters one user may have.", config=True)
    user_max_cores = Float(8, help="Cores one user's clusters may reserve in total.", config=True)
    user_max_memory_gib = Float(32, help="GiB one user's clusters may reserve in total.", config=True)
    # Per-cluster limits are dask-gateway's own c.ClusterConfig.cluster_max_cores /
    # cluster_max_memory / cluster_max_workers (defaults: jupyter_ext.gateway.cluster_config).

    # --- money: from the price catalog (prices.json "dask"), never set here ------------
    prices_file = Unicode(
        "",
        help="Price snapshot whose 'dask' section prices workers; empty: $LENS_PRICES_FILE, "
        "else the refreshed snapshot in $LENS_STATE_DIR, else the one shipped with lens.",
        config=True,
    )
    prices_region = Unicode("us-east-1", help="Region of the price snapshot to use.", config=True)

    def price_catalog(self):
        """This process's price catalog (loaded once per file)."""
        from ..costs.catalog import process_catalog

        return process_catalog(self.prices_file or None, self.prices_region)

    # --- budget ------------------------------------------------------------------
    lens_service_url = Unicode(
        help="Base URL of the lens service (env LENS_SERVICE_URL); empty disables budget checks.",
        config=True,
    )

    @default("lens_service_url")
    def _default_lens_service_url(self):
        return os.environ.get("LENS_SERVICE_URL", "")

    budget_category = Unicode(DASK, help="Ledger category of Dask clusters.", config=True)
    budget_timeout = Float(5.0, help="Seconds to wait for the budget check.", config=True)

    # --- users and data ----------------------------------------------------------
    unix_user_prefix = Unicode(
        "jupyter-",
        help="Hub user NAME runs as unix account PREFIX+NAME in the local and Slurm backends.",
        config=True,
    )
    scratch_bucket = Unicode(
        help="S3 bucket for per-user scratch (s3://BUCKET/scratch/USER); empty means local mode (env LENS_SCRATCH_BUCKET).",
        config=True,
    )

    @default("scratch_bucket")
    def _default_scratch_bucket(self):
        return os.environ.get("LENS_SCRATCH_BUCKET", "")

    scratch_root = Unicode(
        help="Local-mode scratch root; user scratch is ROOT/USER (default $LENS_STATE_DIR/scratch).",
        config=True,
    )

    @default("scratch_root")
    def _default_scratch_root(self):
        state = os.environ.get("LENS_STATE_DIR", "state")
        return os.path.join(os.path.abspath(state), "scratch")

    intake_catalog = Unicode(
        help="Path or URL of the shared intake catalog, given to user servers as LENS_INTAKE_CATALOG "
        "(default: $LENS_INTAKE_CATALOG, else the packaged hub_config/catalog.yaml).",
        config=True,
    )

    @default("intake_catalog")
    def _default_intake_catalog(self):
        from ..paths import config_file

        return str(config_file("catalog.yaml"))

    s3_endpoint_url = Unicode(
        help="S3 endpoint for user servers and workers (env AWS_ENDPOINT_URL; empty = AWS).",
        config=True,
    )

    @default("s3_endpoint_url")
    def _default_s3_endpoint_url(self):
        return os.environ.get("AWS_ENDPOINT_URL", "")

    forwarded_environment = List(
        Unicode(),
        [
            "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "FSSPEC_S3_ENDPOINT_URL",
            "LENS_DATA_BUCKET",
        ],
        help="Non-secret variables passed from the gateway's environment to schedulers and "
        "workers (data access). The gateway's own credentials are never forwarded.",
        config=True,
    )
    worker_env_prefix = Unicode(
        "LENS_WORKER_",
        help="Gateway variables PREFIX+NAME reach schedulers and workers as NAME, e.g. "
        "LENS_WORKER_AWS_ACCESS_KEY_ID: give the gateway credentials scoped to the scratch "
        "bucket under these names, never the hub's own.",
        config=True,
    )

    def cluster_config_value(self, name: str):
        """The operator's dask-gateway ``c.ClusterConfig.<name>`` (or a backend's
        subclass section), validated by upstream's trait; None when not set.

        The cluster options' defaults follow it, so lens does not shadow
        upstream's setting with its own (the option's value then becomes the
        cluster's config, as upstream's options always do).
        """
        from dask_gateway_server.backends.base import ClusterConfig

        for section in CLUSTER_CONFIG_SECTIONS:
            if section in self.config and name in self.config[section]:
                return getattr(ClusterConfig(**{name: self.config[section][name]}), name)
        return None

    def unix_user(self, user_name: str) -> str:
        """The unix account a hub user's cluster processes run as."""
        return f"{self.unix_user_prefix}{user_name}"
