"""WorkerTracker as pure logic: heartbeats in, worker intervals out, and the
usage records it yields charged exactly once across consecutive windows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_ext.gateway.backend import make_record
from jupyter_ext.gateway.metering import Rates, usage_intervals
from jupyter_ext.gateway.settings import GIB
from jupyter_ext.gateway.worker_tracker import WorkerTracker

RATES = Rates(40_000, 5_000, 900_000)
CONFIG = {"worker_cores": 2, "worker_memory": 4 * GIB}
HOUR_MS = 3_600_000


def hb(active=(), closing=(), closed=()):
    return {"count": len(active), "active_workers": list(active),
            "closing_workers": list(closing), "closed_workers": list(closed)}


def running(tracker, name="ns.c1", now=0, status="RUNNING", user="alice"):
    return tracker.observe(name, username=user, config=CONFIG, status=status,
                           running=status in ("PENDING", "STARTING", "RUNNING"),
                           start_time=0, now_ms=now)


def spans(tracker, name="ns.c1"):
    return [(w["name"], w["start_time"], w["stop_time"]) for w in tracker.workers(name)]


def snapshot(tracker, now):
    clusters = [
        make_record(name=t.name, username=t.username, status=t.status, start_time=t.start_time,
                    stop_time=t.stop_time, config=t.config, workers=tracker.workers(t.name), rates=RATES)
        for t in tracker.clusters.values()
    ]
    return {"now": now, "clusters": clusters}


def test_start_when_first_active_stop_when_closing_closed_or_missing():
    t = WorkerTracker(retention_ms=HOUR_MS)
    running(t)
    t.heartbeat("ns.c1", hb(["a", "b", "c"]), 1_000)
    t.heartbeat("ns.c1", hb(["a", "b", "c"]), 2_000)  # still active: nothing changes
    t.heartbeat("ns.c1", hb(["a", "c"], closing=["b"]), 3_000)
    t.heartbeat("ns.c1", hb(["c", "d"], closed=["a", "b"]), 4_000)
    t.heartbeat("ns.c1", hb(["d"], closed=["a", "b"]), 5_000)  # c missing: stopped
    assert sorted(spans(t)) == [
        ("a", 1_000, 4_000), ("b", 1_000, 3_000), ("c", 1_000, 5_000), ("d", 4_000, None)]
    assert [w["status"] for w in t.workers("ns.c1") if w["name"] == "d"] == ["RUNNING"]
    # a worker name coming back is a new interval, never a reopened old one
    t.heartbeat("ns.c1", hb(["a", "d"]), 6_000)
    assert ("a", 6_000, None) in spans(t) and ("a", 1_000, 4_000) in spans(t)


def test_heartbeats_of_unknown_clusters_are_ignored():
    t = WorkerTracker(retention_ms=0)
    t.heartbeat("ns.nope", hb(["a"]), 1_000)
    assert t.clusters == {} and t.workers("ns.nope") == []


def test_cluster_stop_closes_open_workers_and_later_heartbeats_change_nothing():
    t = WorkerTracker(retention_ms=HOUR_MS)
    running(t)
    t.heartbeat("ns.c1", hb(["a", "b"]), 1_000)
    t.heartbeat("ns.c1", hb(["a"], closing=["b"]), 2_000)
    tracked = running(t, now=7_500, status="STOPPING")
    assert tracked.finished and tracked.status == "STOPPING" and tracked.stop_time == 7_500
    assert sorted(spans(t)) == [("a", 1_000, 7_500), ("b", 1_000, 2_000)]
    t.heartbeat("ns.c1", hb(["a", "c"]), 8_000)  # a late heartbeat of a stopping scheduler
    running(t, now=9_000, status="RUNNING")  # and a stale cache entry: still finished
    assert sorted(spans(t)) == [("a", 1_000, 7_500), ("b", 1_000, 2_000)]


def test_clusters_gone_from_the_cache_finish_then_and_count_as_stopped():
    t = WorkerTracker(retention_ms=HOUR_MS)
    running(t, "ns.c1")
    running(t, "ns.c2")
    t.heartbeat("ns.c1", hb(["a"]), 1_000)
    t.heartbeat("ns.c2", hb(["x"]), 1_000)
    t.finish_missing(["ns.c2"], 5_000)
    assert spans(t, "ns.c1") == [("a", 1_000, 5_000)] and t.clusters["ns.c1"].status == "STOPPED"
    assert spans(t, "ns.c2") == [("x", 1_000, None)]


def test_retention_keeps_finished_clusters_then_forgets_them():
    t = WorkerTracker(retention_ms=10_000)
    running(t)
    t.heartbeat("ns.c1", hb(["a"]), 1_000)
    t.finish("ns.c1", 2_000)
    assert t.expire(12_000) == [] and spans(t) == [("a", 1_000, 2_000)]
    assert t.expire(12_001) == ["ns.c1"] and t.workers("ns.c1") == []
    # still in the informer cache as Stopped (the controller keeps it 24 h): not tracked again
    assert running(t, now=13_000, status="STOPPED") is None and t.clusters == {}
    with pytest.raises(ValueError, match="retention_ms must be >= 0"):
        WorkerTracker(retention_ms=-1)


def test_consecutive_windows_charge_every_ms_once():
    """Windows cut across running, stopped and stop-by-cluster-end workers."""
    t = WorkerTracker(retention_ms=HOUR_MS)
    running(t)
    t.heartbeat("ns.c1", hb(["a", "b"]), 10_000)
    cuts, charged = [0], []
    for now, event in [
        (20_000, lambda: t.heartbeat("ns.c1", hb(["a", "b"]), 20_000)),
        (35_000, lambda: t.heartbeat("ns.c1", hb(["a"], closing=["b"]), 35_000)),
        (50_000, lambda: None),
        (65_000, lambda: t.finish("ns.c1", 65_000)),
        (90_000, lambda: None),
    ]:
        event()
        snap = snapshot(t, now)
        charged += usage_intervals(snap, cuts[-1], now, RATES)
        cuts.append(now)
    per_worker = {}
    for iv in charged:
        per_worker.setdefault(iv.worker, []).append((iv.start_ms, iv.end_ms))
    assert per_worker == {
        "a": [(10_000, 20_000), (20_000, 35_000), (35_000, 50_000), (50_000, 65_000)],
        "b": [(10_000, 20_000), (20_000, 35_000)],
    }
    rate = RATES.worker_rate(2, 4 * GIB)
    assert all(iv.rate_microusd_per_hour == rate == 100_000 for iv in charged)


@settings(max_examples=150, deadline=None)
@given(
    beats=st.lists(st.sets(st.sampled_from("abcd")), min_size=1, max_size=12),
    cuts=st.sets(st.integers(min_value=1, max_value=14), max_size=6),
)
def test_windows_never_double_count_any_heartbeat_sequence(beats, cuts):
    """Whatever the heartbeats and window cuts: charged ms per worker == its spans."""
    t = WorkerTracker(retention_ms=HOUR_MS)
    running(t)
    cut_at = {c * 1_000 + 500 for c in cuts}
    charged: dict[str, int] = {}
    since = 0
    for i, active in enumerate(beats, start=1):
        for cut in sorted(c for c in cut_at if (i - 1) * 1_000 <= c < i * 1_000):
            for iv in usage_intervals(snapshot(t, cut), since, cut, RATES):
                charged[iv.worker] = charged.get(iv.worker, 0) + iv.end_ms - iv.start_ms
            since = cut
        t.heartbeat("ns.c1", hb(sorted(active)), i * 1_000)
    end = (len(beats) + 1) * 1_000
    t.finish("ns.c1", end)
    for iv in usage_intervals(snapshot(t, end + 1_000), since, end + 1_000, RATES):
        charged[iv.worker] = charged.get(iv.worker, 0) + iv.end_ms - iv.start_ms
    exact: dict[str, int] = {}
    for name, start, stop in spans(t):
        assert stop is not None
        exact[name] = exact.get(name, 0) + stop - start
    assert charged == {k: v for k, v in exact.items() if v > 0}
