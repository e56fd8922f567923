"""Cost estimates: instance choice and price before a job runs, and the actual cost after.

All money is integer micro-dollars. The hold covers the worst case (walltime for every
node and array member); the expected cost uses the app's reference runtime scaled per arch.
"""

from __future__ import annotations

from typing import Any

from ..costs.catalog import PriceCatalog, process_catalog
from .rates import DEFAULT_FAMILIES, choose_instance
from .spec import JobSpec


def _cost(seconds: int, rate_micro_per_hour: int) -> int:
    """ceil(seconds x rate / 3600) in integer arithmetic."""
    return -(-seconds * rate_micro_per_hour // 3600)


def estimate(spec: JobSpec, catalog=None, prices: PriceCatalog | None = None,
             node_rate_micro: int | None = None) -> dict[str, Any]:
    """Instance type, hourly rate and cost bounds for ``spec`` (no side effects).

    ``prices``: the price catalog (default: this process's, ``process_catalog()``);
    ``node_rate_micro``: a backend's own node-hour price, which replaces the instance's.
    """
    prices = prices or process_catalog()
    app = catalog.get(spec.app) if (catalog is not None and spec.app) else None
    families = app.instance_families[spec.arch] if app else DEFAULT_FAMILIES[spec.arch]
    it, rate = choose_instance(prices, families, spec.arch, spec.vcpus, spec.memory_mib,
                               spec.gpus, spec.spot)
    if node_rate_micro is not None:
        rate = node_rate_micro
    units = spec.nodes * spec.array_size
    scale = app.runtime_scale.get(spec.arch, 1.0) if app else 1.0
    expected_s = spec.walltime_s
    if app and app.reference_runtime_s:
        expected_s = min(spec.walltime_s, int(app.reference_runtime_s * scale))
    return {
        "instance_type": it.name,
        "spot": spec.spot,
        "hourly_rate_micro": rate,
        "nodes": spec.nodes,
        "array_size": spec.array_size,
        "walltime_s": spec.walltime_s,
        "runtime_scale": scale,
        "est_cost_micro": _cost(spec.walltime_s * units, rate),
        "expected_cost_micro": _cost(expected_s * units, rate),
        "snapshot": prices.info.as_dict(),
    }


def actual_cost(task_seconds: float, nodes: int, rate_micro_per_hour: int) -> int:
    """Runtime (summed over array members, to the millisecond) x nodes x rate, rounded up
    to a whole micro-dollar."""
    ms = int(round(task_seconds * 1000)) * nodes
    return -(-ms * rate_micro_per_hour // 3_600_000)
