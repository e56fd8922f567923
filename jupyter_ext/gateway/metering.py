"""Metering: worker time x worker rate, from the gateway's own records.

The lens backends expose ``GET {gateway}/api/v1/lens/usage`` (service token
only): every cluster the gateway still remembers, with each worker's start and
stop times (ms). ``usage_intervals`` clips those to a charging window and prices
them in integer micro-dollars; ``live_costs`` gives $/h and the accrued cost of
running clusters for ``%costs`` and the cluster widget. All money is integer
micro-USD; ``*_usd`` floats are for display only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from jupyter_ext.clients.gateway import GatewayClient

from .settings import GIB

MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class Rates:
    """Prices per hour in integer micro-USD."""

    core_hour_microusd: int
    gib_hour_microusd: int
    gpu_hour_microusd: int = 0

    @classmethod
    def from_catalog(cls, catalog, region: str | None = None) -> Rates:
        """The Dask worker rates of a costs ``PriceCatalog`` (its ``dask`` section)."""
        from ..costs.money import to_micro

        d = catalog.dask(region)
        return cls(to_micro(d["core_hour"]), to_micro(d["gib_hour"]), to_micro(d["gpu_hour"]))

    @classmethod
    def from_settings(cls, settings) -> Rates:
        """The rates of the catalog ``GatewaySettings`` points at."""
        return cls.from_catalog(settings.price_catalog())

    def worker_rate(self, cores: float, memory_bytes: int, gpus: int = 0) -> int:
        """micro-USD per hour for one worker (memory priced per started MiB)."""
        mib = -(-int(memory_bytes) // 2**20)
        return int(
            round(cores * self.core_hour_microusd)
            + (mib * self.gib_hour_microusd) // 1024
            + gpus * self.gpu_hour_microusd
        )


@dataclass(frozen=True)
class UsageInterval:
    """One worker's running time inside a charging window, priced."""

    user: str
    cluster: str
    worker: str
    start_ms: int
    end_ms: int
    cores: float
    memory_bytes: int
    gpus: int
    rate_microusd_per_hour: int
    cost_microusd: int

    def to_dict(self) -> dict:
        return asdict(self)


def cost_microusd(rate_microusd_per_hour: int, duration_ms: int) -> int:
    """Integer cost of ``duration_ms`` at a per-hour rate (rounded half up)."""
    return (int(rate_microusd_per_hour) * int(duration_ms) + MS_PER_HOUR // 2) // MS_PER_HOUR


def _worker_resources(cluster: Mapping) -> tuple[float, int, int]:
    return (
        float(cluster.get("worker_cores") or 1),
        int(cluster.get("worker_memory") or 0),
        int(cluster.get("worker_gpus") or 0),
    )


def _cluster_rate(cluster: Mapping, rates: Rates, cores: float, memory: int, gpus: int) -> int:
    """The gateway's own rate for the cluster's workers when it sent one (lens
    gateways do), so the ledger charges what the cluster widget shows."""
    sent = cluster.get("rate_microusd_per_hour")
    return int(sent) if sent is not None else rates.worker_rate(cores, memory, gpus)


def usage_intervals(
    snapshot: Mapping, since_ms: int, until_ms: int, rates: Rates
) -> list[UsageInterval]:
    """Worker time of every cluster in ``snapshot`` that overlaps [since, until).

    A worker still running counts up to ``until_ms``. Consecutive windows
    never double count: the intervals of [a, b) and [b, c) are disjoint.
    """
    if until_ms < since_ms:
        raise ValueError(f"until_ms ({until_ms}) must not be before since_ms ({since_ms})")
    out: list[UsageInterval] = []
    for cluster in snapshot.get("clusters", []):
        cores, memory, gpus = _worker_resources(cluster)
        rate = _cluster_rate(cluster, rates, cores, memory, gpus)
        for worker in cluster.get("workers", []):
            start = max(int(worker["start_time"]), since_ms)
            stop = worker.get("stop_time")
            end = min(int(stop) if stop is not None else until_ms, until_ms)
            if end <= start:
                continue
            out.append(
                UsageInterval(
                    user=cluster["username"],
                    cluster=cluster["name"],
                    worker=worker["name"],
                    start_ms=start,
                    end_ms=end,
                    cores=cores,
                    memory_bytes=memory,
                    gpus=gpus,
                    rate_microusd_per_hour=rate,
                    cost_microusd=cost_microusd(rate, end - start),
                )
            )
    return out


ENDING = frozenset({"STOPPING", "STOPPED", "FAILED"})  # dask-gateway ClusterStatus names


def live_costs(snapshot: Mapping, rates: Rates, now_ms: int | None = None) -> list[dict]:
    """Per active cluster: running workers, $/h now, and cost accrued so far."""
    now = int(snapshot.get("now", 0) or 0) if now_ms is None else now_ms
    now = now or int(time.time() * 1000)
    result = []
    for cluster in snapshot.get("clusters", []):
        if cluster.get("stop_time") is not None or cluster.get("status") in ENDING:
            continue  # stopping (shutdown() returned) or gone: no longer running for the user
        cores, memory, gpus = _worker_resources(cluster)
        rate = _cluster_rate(cluster, rates, cores, memory, gpus)
        running = [w for w in cluster.get("workers", []) if w.get("stop_time") is None]
        accrued = sum(
            i.cost_microusd
            for i in usage_intervals({"clusters": [cluster]}, 0, now, rates)
        )
        per_hour = rate * len(running)
        result.append(
            {
                "name": cluster["name"],
                "user": cluster["username"],
                "status": cluster.get("status", ""),
                "workers": len(running),
                "worker_cores": cores,
                "worker_memory_gib": round(memory / GIB, 3),
                "microusd_per_hour": per_hour,
                "accrued_microusd": accrued,
                "usd_per_hour": per_hour / 1e6,
                "accrued_usd": accrued / 1e6,
            }
        )
    return result


async def fetch_usage(gateway_url: str, token: str, *, request_timeout: float = 10.0) -> dict:
    """The gateway's usage snapshot (needs the gateway's service token); PeerError when not."""
    return await GatewayClient(gateway_url, token, timeout=request_timeout).usage()


def my_cluster_costs(gateway=None) -> list[dict]:
    """Live cost of the calling user's running clusters (user servers, kernels).

    Uses the zero-config ``dask_gateway.Gateway()`` (the user's own hub token)
    and the gateway's ``/api/v1/lens/costs`` route, which only ever returns the
    caller's clusters.
    """
    from dask_gateway import Gateway

    own = gateway is None
    gw = Gateway() if own else gateway

    async def _get():
        resp = await gw._request("GET", f"{gw.address}/api/v1/lens/costs")
        return (await resp.json())["clusters"]

    try:
        return gw.sync(_get)
    finally:
        if own:
            gw.close()
