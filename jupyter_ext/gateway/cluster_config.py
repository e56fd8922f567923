"""dask-gateway's ``ClusterConfig`` with lens's defaults, one subclass per backend.

lens does not shadow dask-gateway's per-cluster limits: an operator's
``c.ClusterConfig.cluster_max_cores`` (or ``cluster_max_memory``,
``cluster_max_workers``) applies as upstream documents it, and lens's
per-user limits (``GatewaySettings.user_max_*``) can only make a cluster's
caps smaller (``limits.plan_caps``). Upstream's defaults are "no limit"; lens's
are half the default user allowance, so the default two clusters per user fit.
The backends select these classes through upstream's ``cluster_config_class``.
The Slurm and Kubernetes subclasses live beside their backends (``slurm.py``,
``kube.py``): importing upstream's Kubernetes backend takes seconds (its client
library), and the local gateway, which never uses it, started that much later.
"""

from __future__ import annotations

from dask_gateway_server.backends.base import ClusterConfig
from dask_gateway_server.backends.local import LocalClusterConfig
from traitlets import default

from .settings import GIB

DEFAULT_CLUSTER_MAX_CORES = 4.0  # GatewaySettings.user_max_cores (8) / user_max_clusters (2)
DEFAULT_CLUSTER_MAX_MEMORY = 16 * GIB  # user_max_memory_gib (32) / user_max_clusters (2)


class LensClusterConfigMixin(ClusterConfig):
    """Defaults only; every value set in config (c.ClusterConfig.*) wins."""

    @default("cluster_max_cores")
    def _lens_default_cluster_max_cores(self):
        return DEFAULT_CLUSTER_MAX_CORES

    @default("cluster_max_memory")
    def _lens_default_cluster_max_memory(self):
        return DEFAULT_CLUSTER_MAX_MEMORY


class LensLocalClusterConfig(LensClusterConfigMixin, LocalClusterConfig):
    """LocalBackend's cluster config with lens's default caps."""
