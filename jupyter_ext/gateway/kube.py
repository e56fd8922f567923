"""Kubernetes: dask-gateway's KubeBackend with lens's limits, budget, options and metering.

``KubeBackend`` keeps no database: its clusters are ``DaskCluster`` custom
resources, mirrored into ``self.clusters`` / ``self.username_to_clusters`` by an
informer. ``LensKubeBackend`` answers the three questions ``LensBackendMixin``
asks (the user's active cluster configs and names, the usage records) from
that cache. Two differences from the DB backends:

- The cache lags a new resource by one informer event, so a cluster created a
  moment ago is not in it yet. Until it shows up (or ``pending_seconds``
  pass), its config is kept here, so two quick creations cannot both pass the
  per-user limits.
- The gateway never sees the worker pods (the controller runs them). Worker
  start/stop times come from the schedulers' heartbeats instead
  (``worker_tracker.WorkerTracker``, fed by ``on_cluster_heartbeat`` and by
  every informer update in ``sync_cluster``), known to one heartbeat period.
  The stock controller starts schedulers with ``--dg-heartbeat-period 0``
  (heartbeats only when scaling, else hourly), so this backend wraps each
  cluster's ``scheduler_cmd`` to restore a periodic heartbeat
  (``scheduler_heartbeat_period``). Worker history is in memory: a gateway
  restart loses it for running clusters until their next heartbeat.
"""

from __future__ import annotations

import shlex
import time

from dask_gateway_server.backends.kubernetes import KubeBackend
from dask_gateway_server.backends.kubernetes.backend import KubeClusterConfig
from dask_gateway_server.models import ClusterStatus
from traitlets import Float

from .backend import LensBackendMixin, cluster_config_trait, make_record
from .cluster_config import LensClusterConfigMixin
from .metering import Rates
from .worker_tracker import WorkerTracker

# The scheduler command runs as ``sh -c SCRIPT CMD... CONTROLLER_ARGS...``:
# $0 and $@ are the original command and the controller's arguments, and the
# heartbeat option comes last, so it wins over the controller's
# ``--dg-heartbeat-period 0`` (click keeps an option's last value).
HEARTBEAT_WRAPPER = 'exec "$0" "$@" --dg-heartbeat-period {period}'
_WRAPPER_PREFIX = HEARTBEAT_WRAPPER.split("{")[0]


def with_heartbeat(cmd: list[str], period: float) -> list[str]:
    """``cmd`` (the cluster's scheduler_cmd) made to heartbeat every ``period`` s."""
    if not period > 0:
        raise ValueError(f"heartbeat period must be > 0 seconds, got {period!r}")
    cmd = list(cmd)
    if cmd[:2] == ["sh", "-c"] and len(cmd) > 2 and cmd[2].startswith(_WRAPPER_PREFIX):
        cmd = cmd[3:]  # already wrapped: wrap the original once
    if not cmd:
        raise ValueError("scheduler_cmd is empty")
    return ["sh", "-c", HEARTBEAT_WRAPPER.format(period=shlex.quote(f"{float(period):g}")), *cmd]


class LensKubeClusterConfig(LensClusterConfigMixin, KubeClusterConfig):
    """KubeBackend's cluster config with lens's default caps."""


class LensKubeBackend(LensBackendMixin, KubeBackend):
    """Dask clusters as DaskCluster resources, with lens's limits, budget check and metering."""

    cluster_config_class = cluster_config_trait("jupyter_ext.gateway.kube.LensKubeClusterConfig")

    pending_seconds = Float(
        120.0,
        help="How long a just-created cluster counts against the user's limits before "
        "it appears in the informer's cache (then the cache counts it).",
        config=True,
    )
    scheduler_heartbeat_period = Float(
        15.0,
        help="Seconds between a scheduler's heartbeats to the gateway. They date the "
        "workers' start and stop for metering (to one period), and each one also patches "
        "the DaskCluster's replicas. The stock controller passes 0 (heartbeat only when "
        "scaling, otherwise hourly); a positive value is appended to every cluster's "
        "scheduler command. 0 keeps the controller's setting.",
        config=True,
    )
    cluster_usage_max_age = Float(
        24 * 3600.0,
        help="Seconds a finished cluster's worker times stay in /api/v1/lens/usage, so the "
        "lens service can still charge its last minutes (like DBBackendBase.db_cluster_max_age).",
        config=True,
    )

    @property
    def tracker(self) -> WorkerTracker:
        if getattr(self, "_lens_tracker", None) is None:
            self._lens_tracker = WorkerTracker(int(self.cluster_usage_max_age * 1000))
        return self._lens_tracker

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

    async def process_cluster_options(self, user, request):
        options, config = await super().process_cluster_options(user, request)
        if self.scheduler_heartbeat_period > 0:
            config.scheduler_cmd = with_heartbeat(config.scheduler_cmd, self.scheduler_heartbeat_period)
        return options, config

    # --- metering: worker times from heartbeats, cluster ends from the informer ---
    def _observe(self, cluster, now_ms: int):
        return self.tracker.observe(
            cluster.name,
            username=cluster.username,
            config=cluster.config,
            status=cluster.status.name,
            running=cluster.status <= ClusterStatus.RUNNING,
            start_time=cluster.start_time,
            stop_time=cluster.stop_time,
            now_ms=now_ms,
        )

    async def on_cluster_heartbeat(self, cluster_name, msg):
        cluster = (getattr(self, "clusters", None) or {}).get(cluster_name)
        if cluster is not None:  # upstream ignores heartbeats of uncached clusters too
            now = self.now_ms()
            if self._observe(cluster, now) is not None:
                self.tracker.heartbeat(cluster_name, msg, now)
        await super().on_cluster_heartbeat(cluster_name, msg)

    async def sync_cluster(self, cluster_name):
        await super().sync_cluster(cluster_name)
        cluster, now = self.clusters.get(cluster_name), self.now_ms()
        if cluster is None:  # deleted: its workers are gone
            self.tracker.finish(cluster_name, now)
        else:  # past RUNNING: finish() inside observe()
            self._observe(cluster, now)

    # --- the LensBackendMixin interface -----------------------------------------
    def lens_active_configs(self, username: str) -> list[dict]:
        configs = [dict(c.config) for c in self._active_cached(username)]
        return configs + list(self._pending_of(username).values())

    def lens_active_names(self, username: str) -> list[str]:
        return sorted({c.name for c in self._active_cached(username)} | set(self._pending_of(username)))

    def lens_cluster_records(self, username: str | None = None) -> list[dict]:
        """Tracked clusters (running, or finished within ``cluster_usage_max_age``)
        with their workers' heartbeat-dated start/stop times (``make_record``)."""
        now = self.now_ms()
        cached = dict(getattr(self, "clusters", None) or {})
        for cluster in cached.values():
            self._observe(cluster, now)
        self.tracker.finish_missing(cached, now)
        self.tracker.expire(now)
        rates = Rates.from_settings(self.lens)
        return [
            make_record(
                name=t.name,
                username=t.username,
                status=t.status,
                start_time=t.start_time,
                stop_time=t.stop_time,
                config=t.config,
                workers=self.tracker.workers(t.name),
                rates=rates,
            )
            for t in list(self.tracker.clusters.values())
            if username is None or t.username == username
        ]
