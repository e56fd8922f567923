"""Worker start/stop times from scheduler heartbeats (Kubernetes, where the
gateway never sees the worker pods).

Every heartbeat of a running cluster lists its scheduler's ``active_workers``
(plus ``closing_workers`` / ``closed_workers``). ``WorkerTracker`` turns that
sequence into intervals:

- a worker starts when it is first seen active;
- it stops at the first heartbeat where it is not active any more (closing,
  closed or simply missing);
- when the cluster finishes (status past RUNNING, or gone from the informer's
  cache) every open worker stops then, and later heartbeats are ignored;
- a finished cluster is kept ``retention_ms`` after it finished, so the lens
  service can still charge its tail, then forgotten.

Precision: start and stop are known to one heartbeat period (the worker ran
from some time in the period before it was first seen, and stopped some time
in the period before it was seen gone). Everything is in memory: a gateway
restart forgets the history of running clusters; their workers are seen
again at the first heartbeat after the restart, so the time lost is at most
the downtime plus one period.

Pure: no dask-gateway or Kubernetes imports; the caller passes the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

RUNNING_STATUSES = ("PENDING", "STARTING", "RUNNING")


@dataclass
class WorkerSpan:
    """One worker's running time, ms since the epoch (stop None while running)."""

    name: str
    start_ms: int
    stop_ms: int | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "status": "RUNNING" if self.stop_ms is None else "STOPPED",
            "start_time": self.start_ms,
            "stop_time": self.stop_ms,
        }


@dataclass
class TrackedCluster:
    """What the tracker remembers of one cluster."""

    name: str
    username: str
    config: dict
    status: str = "RUNNING"
    start_time: int | None = None
    stop_time: int | None = None
    finished_ms: int | None = None
    spans: list[WorkerSpan] = field(default_factory=list)
    open: dict[str, WorkerSpan] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.finished_ms is not None


class WorkerTracker:
    """Clusters' worker intervals, fed by heartbeats and cluster status changes."""

    def __init__(self, retention_ms: int):
        if retention_ms < 0:
            raise ValueError(f"retention_ms must be >= 0, got {retention_ms}")
        self.retention_ms = int(retention_ms)
        self.clusters: dict[str, TrackedCluster] = {}

    # --- what the backend tells it -----------------------------------------------
    def observe(
        self,
        name: str,
        *,
        username: str,
        config: Mapping,
        status: str,
        running: bool,
        start_time: int | None = None,
        stop_time: int | None = None,
        now_ms: int,
    ) -> TrackedCluster | None:
        """The cluster as the cache has it now. ``running`` is status <= RUNNING.

        A cluster first seen already finished is not tracked (its workers were
        never seen). A running one is tracked from now on; one that stopped
        running has its open workers stopped at ``now_ms``.
        """
        tracked = self.clusters.get(name)
        if tracked is None:
            if not running:
                return None
            tracked = self.clusters[name] = TrackedCluster(name, username, dict(config))
        if tracked.finished:
            return tracked
        tracked.username, tracked.config, tracked.status = username, dict(config), status
        tracked.start_time, tracked.stop_time = start_time, stop_time
        if not running:
            self.finish(name, now_ms)
        return tracked

    def heartbeat(self, name: str, msg: Mapping, now_ms: int) -> None:
        """A heartbeat of ``name`` (which ``observe`` must have seen running)."""
        tracked = self.clusters.get(name)
        if tracked is None or tracked.finished:
            return
        active = set(_names(msg.get("active_workers")))
        for worker in sorted(set(tracked.open) - active):  # closing, closed or missing
            span = tracked.open.pop(worker)
            span.stop_ms = max(int(now_ms), span.start_ms)
        for worker in sorted(active - set(tracked.open)):
            span = WorkerSpan(worker, int(now_ms))
            tracked.open[worker] = span
            tracked.spans.append(span)

    def finish(self, name: str, now_ms: int) -> None:
        """The cluster stopped running (or left the cache): stop its open workers."""
        tracked = self.clusters.get(name)
        if tracked is None or tracked.finished:
            return
        for span in tracked.open.values():
            span.stop_ms = max(int(now_ms), span.start_ms)
        tracked.open.clear()
        tracked.finished_ms = int(now_ms)
        if tracked.status in RUNNING_STATUSES:  # left the cache while running: deleted
            tracked.status = "STOPPED"
        if tracked.stop_time is None:
            tracked.stop_time = int(now_ms)

    def finish_missing(self, present: Iterable[str], now_ms: int) -> None:
        """Finish every running cluster not in ``present`` (gone from the cache)."""
        keep = set(present)
        for name, tracked in list(self.clusters.items()):
            if name not in keep and not tracked.finished:
                self.finish(name, now_ms)

    def expire(self, now_ms: int) -> list[str]:
        """Forget clusters finished more than ``retention_ms`` ago; their names."""
        gone = [
            name
            for name, t in self.clusters.items()
            if t.finished and now_ms - t.finished_ms > self.retention_ms
        ]
        for name in gone:
            del self.clusters[name]
        return gone

    # --- what it answers -----------------------------------------------------------
    def workers(self, name: str) -> list[dict]:
        tracked = self.clusters.get(name)
        return [] if tracked is None else [s.to_dict() for s in tracked.spans]


def _names(value) -> list[str]:
    return [str(v) for v in (value or [])]
