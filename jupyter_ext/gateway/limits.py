"""Per-user limits on Dask clusters: number of clusters, cores and memory.

Each new cluster *reserves* a share of its owner's allowance: its
``cluster_max_cores`` / ``cluster_max_memory`` are capped at what the user's
other active clusters leave free. dask-gateway then enforces those caps itself
(scale and adapt requests are clipped to ``cluster_max_workers``), so the user
total can never be exceeded, even by adaptive scaling. Pure functions only.

The per-cluster limits are dask-gateway's own ``ClusterConfig.cluster_max_cores``,
``cluster_max_memory`` and ``cluster_max_workers`` (lens only gives them
defaults, ``jupyter_ext.gateway.cluster_config``): lens never loosens them,
every cap is the smaller of the operator's value and what the user has left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .settings import GIB, GatewaySettings


class LimitError(ValueError):
    """A request exceeds a per-user or per-cluster limit (shown to the user)."""


@dataclass(frozen=True)
class Caps:
    cluster_max_cores: float
    cluster_max_memory: int
    cluster_max_workers: int


def _gib(n: float) -> str:
    return f"{n / GIB:.3g} GiB"


def reserved(configs: Iterable[Mapping], settings: GatewaySettings) -> tuple[float, int]:
    """Cores and bytes reserved by the given active clusters' configs.

    A cluster without a cap (made before lens capped it) could use the whole
    allowance, so it counts as reserving all of it.
    """
    cores = 0.0
    memory = 0
    for config in configs:
        c = config.get("cluster_max_cores")
        m = config.get("cluster_max_memory")
        cores += settings.user_max_cores if c is None else float(c)
        memory += int(settings.user_max_memory_gib * GIB) if m is None else int(m)
    return cores, memory


def _smaller(a, b):
    """min() where None means 'no limit'."""
    return a if b is None else b if a is None else min(a, b)


def plan_caps(
    active_configs: list[Mapping], new_config: Mapping, settings: GatewaySettings
) -> Caps:
    """Caps for a new cluster given the user's other active clusters.

    ``new_config`` needs worker_cores, worker_memory, scheduler_cores and
    scheduler_memory (bytes), and may hold the operator's ClusterConfig caps
    cluster_max_cores, cluster_max_memory and cluster_max_workers (None or
    absent: no per-cluster limit). The result is never looser than those.
    Raises LimitError with the numbers when the cluster does not fit.
    """
    n = len(active_configs)
    if n >= settings.user_max_clusters:
        raise LimitError(
            f"You already have {n} active Dask cluster(s); the limit is "
            f"{settings.user_max_clusters} per user. Shut one down first "
            "(cluster.shutdown() or Gateway().stop_cluster(name))."
        )
    used_cores, used_memory = reserved(active_configs, settings)
    user_memory = int(settings.user_max_memory_gib * GIB)
    op_cores = new_config.get("cluster_max_cores")
    op_memory = new_config.get("cluster_max_memory")
    op_workers = new_config.get("cluster_max_workers")
    cap_cores = _smaller(settings.user_max_cores - used_cores, op_cores)
    cap_memory = _smaller(user_memory - used_memory, None if op_memory is None else int(op_memory))
    per_cluster = f"{op_cores:g} cores" if op_cores is not None else "no limit"
    per_cluster_mem = _gib(op_memory) if op_memory is not None else "no limit"
    worker_cores = float(new_config["worker_cores"])
    worker_memory = int(new_config["worker_memory"])
    sched_cores = float(new_config.get("scheduler_cores", 1))
    sched_memory = int(new_config.get("scheduler_memory", 2 * GIB))
    need_cores = sched_cores + worker_cores
    need_memory = sched_memory + worker_memory
    if need_cores > cap_cores:
        raise LimitError(
            f"Not enough cores left: a scheduler and one worker need {need_cores:g} cores, "
            f"but only {max(cap_cores, 0):g} are free (limit {settings.user_max_cores:g} cores "
            f"per user, {used_cores:g} reserved by your {n} other cluster(s); "
            f"per cluster: {per_cluster})."
        )
    if need_memory > cap_memory:
        raise LimitError(
            f"Not enough memory left: a scheduler and one worker need {_gib(need_memory)}, "
            f"but only {_gib(max(cap_memory, 0))} is free (limit "
            f"{settings.user_max_memory_gib:g} GiB per user, {_gib(used_memory)} reserved by "
            f"your {n} other cluster(s); per cluster: {per_cluster_mem})."
        )
    workers = min(
        math.floor((cap_cores - sched_cores) / worker_cores),
        (cap_memory - sched_memory) // worker_memory,
    )
    workers = _smaller(workers, op_workers)
    return Caps(float(cap_cores), int(cap_memory), int(workers))
