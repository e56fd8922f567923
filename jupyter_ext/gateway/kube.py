"""Kubernetes: dask-gateway's KubeBackend with lens's limits, budget and options.

``KubeBackend`` keeps no database: its clusters are ``DaskCluster`` custom
resources, mirrored into ``self.clusters`` / ``self.username_to_clusters`` by an
informer. ``LensKubeBackend`` answers the three questions ``LensBackendMixin``
asks (the user's active cluster configs and names, the usage records) from
that cache. Two differences from the DB backends:

- The cache lags a new resource by one informer event, so a cluster created a
  moment ago is not in it yet. Until it shows up (or ``pending_seconds``
  pass), its config is kept here, so two quick creations cannot both pass the
  per-user limits.
- The gateway never sees the workers on Kubernetes (the controller runs their
  pods), so there are no worker start/stop times: ``/api/v1/lens/usage`` and
  ``/api/v1/lens/costs`` answer 501, the lens service does not charge Dask time
  there, and the cluster widget shows "Cost: unavailable".
"""

from __future__ import annotations

import json
import time

from aiohttp import web
from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.models import ClusterStatus
from traitlets import Float

from .backend import LensBackendMixin


class LensKubeBackend(LensBackendMixin, KubeBackend):
    """Dask clusters as DaskCluster resources, with lens's limits and budget check."""

    pending_seconds = Float(
        120.0,
        help="How long a just-created cluster counts against the user's limits before "
        "it appears in the informer's cache (then the cache counts it).",
        config=True,
    )

    def _pending(self) -> dict[str, tuple[str, dict, float]]:
        if getattr(self, "_lens_pending", None) is None:
            self._lens_pending = {}
        return self._lens_pending

    def _cached(self, username: str) -> list:
        return list((getattr(self, "username_to_clusters", None) or {}).get(username, {}).values())

    def _active_cached(self, username: str) -> list:
        return [c for c in self._cached(username) if c.status <= ClusterStatus.RUNNING]

    def _pending_of(self, username: str) -> dict[str, dict]:
        now, cached = time.monotonic(), getattr(self, "clusters", None) or {}
        pending = self._pending()
        for name, (_, _, at) in list(pending.items()):
            if name in cached or now - at > self.pending_seconds:
                del pending[name]
        return {name: config for name, (user, config, _) in pending.items() if user == username}

    def make_cluster_object(self, username, options, config):
        obj = super().make_cluster_object(username, options, config)
        name = f"{config.namespace}.{obj['metadata']['name']}"
        self._pending()[name] = (username, obj["spec"]["config"], time.monotonic())
        return obj

    async def start_cluster(self, user, cluster_options):
        before = set(self._pending())
        try:
            return await super().start_cluster(user, cluster_options)
        except BaseException:
            for name in set(self._pending()) - before:  # never created: reserves nothing
                if self._pending()[name][0] == user.name:
                    del self._pending()[name]
            raise

    # --- the LensBackendMixin interface -----------------------------------------
    def lens_active_configs(self, username: str) -> list[dict]:
        configs = [dict(c.config) for c in self._active_cached(username)]
        return configs + list(self._pending_of(username).values())

    def lens_active_names(self, username: str) -> list[str]:
        return sorted({c.name for c in self._active_cached(username)} | set(self._pending_of(username)))

    def lens_cluster_records(self, username: str | None = None) -> list[dict]:
        raise web.HTTPNotImplemented(
            text=json.dumps({"error": "Dask usage and costs are not metered on Kubernetes: the "
                             "gateway does not see the worker pods (see docs/dask.md)."}),
            content_type="application/json",
        )
