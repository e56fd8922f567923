"""Dask charging with a persisted watermark: pure planning, then a real SQLite
ledger (the service's tables), restarts simulated by fresh engines on the same
file, and two charging instances racing on one database."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from jupyter_ext.costs import db as costs_db
from jupyter_ext.costs.ledger import Ledger
from jupyter_ext.gateway.metering import Rates, cost_microusd
from jupyter_ext.gateway.settings import GIB
from jupyter_ext.service import dask_charging as dc

RATES = Rates(core_hour_microusd=40_000, gib_hour_microusd=5_000)
RATE = 45_000  # 1 core + 1 GiB
T0 = 1_700_000_000_000
ACCOUNTS = {"alice": ["user:alice", "group:lab"], "bob": ["user:bob"]}


def snapshot(now: int, workers: dict[str, tuple[int, int | None]], user="alice", cluster="c1", rate=None):
    record = {
        "name": cluster,
        "username": user,
        "worker_cores": 1,
        "worker_memory": GIB,
        "workers": [{"name": n, "start_time": s, "stop_time": e} for n, (s, e) in workers.items()],
    }
    if rate is not None:
        record["rate_microusd_per_hour"] = rate
    return {"now": now, "clusters": [record]}


def make_ledger(path) -> Ledger:
    ledger = Ledger(costs_db.make_engine(f"sqlite:///{path}"))
    dc.ensure_tables(ledger.engine)
    return ledger


def dask_rows(ledger: Ledger, account="user:alice") -> list[tuple[str, int]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            sa.select(costs_db.entries.c.ref, costs_db.entries.c.spent_delta)
            .where(costs_db.entries.c.account == account, costs_db.entries.c.category == "dask")
            .order_by(costs_db.entries.c.id)
        ).all()
    return [(r.ref, int(r.spent_delta)) for r in rows]


def charged_ms(rows) -> dict[str, list[tuple[int, int]]]:
    """Per worker, the [start, end) spans charged, parsed from the refs."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for ref, _ in rows:
        _, _, rest = ref.partition(":")
        who, _, span = rest.rpartition(":")
        start, end = (int(x) for x in span.split("-"))
        spans.setdefault(who, []).append((start, end))
    return spans


def test_plan_clips_to_the_window_and_never_moves_back():
    snap = snapshot(T0 + 10_000, {"w1": (T0, None), "w2": (T0 + 2_000, T0 + 5_000)})
    intervals, until = dc.plan(snap, T0 + 4_000, RATES)
    assert until == T0 + 10_000
    assert [(i.worker, i.start_ms, i.end_ms) for i in intervals] == [
        ("w1", T0 + 4_000, T0 + 10_000), ("w2", T0 + 4_000, T0 + 5_000)]
    assert intervals[0].cost_microusd == cost_microusd(RATE, 6_000)
    # a gateway clock behind the watermark charges nothing and keeps the watermark
    assert dc.plan(snap, T0 + 20_000, RATES) == ([], T0 + 20_000)
    # sub-micro-dollar slivers are dropped (nothing to book), the window still closes
    tiny = snapshot(T0 + 10, {"w1": (T0, None)})
    assert dc.plan(tiny, T0, RATES) == ([], T0 + 10)
    assert dc.interval_ref(intervals[0]) == f"dask:c1/w1:{T0 + 4_000}-{T0 + 10_000}"
    assert dc.users_to_charge(snap, T0 + 4_000, RATES) == {"alice"}
    assert dc.users_to_charge(snap, None, RATES) == set()


def test_gateway_rate_wins_over_the_local_settings():
    snap = snapshot(T0 + 3_600_000, {"w1": (T0, None)}, rate=123_000)
    intervals, _ = dc.plan(snap, T0, RATES)
    assert intervals[0].rate_microusd_per_hour == 123_000 and intervals[0].cost_microusd == 123_000


def test_first_start_charges_from_now_and_later_starts_resume(tmp_path):
    ledger = make_ledger(tmp_path / "lens.sqlite")
    assert dc.current_watermark(ledger) is None
    assert dc.start_watermark(ledger, now_ms=T0) == T0
    assert dc.start_watermark(ledger, now_ms=T0 + 99_000) == T0  # a restart keeps it
    # worker time before the very first start is not charged
    result = dc.charge(ledger, snapshot(T0 + 1_000, {"w1": (T0 - 60_000, None)}), RATES, ACCOUNTS)
    assert [(i.start_ms, i.end_ms) for i in result.intervals] == [(T0, T0 + 1_000)]


def test_charge_without_watermark_only_sets_it(tmp_path):
    ledger = make_ledger(tmp_path / "lens.sqlite")
    result = dc.charge(ledger, snapshot(T0, {"w1": (T0 - 5_000, None)}), RATES, ACCOUNTS)
    assert result.intervals == [] and result.since_ms is None
    assert dc.current_watermark(ledger) == T0 and dask_rows(ledger) == []


def test_restart_loses_nothing_and_counts_nothing_twice(tmp_path):
    path = tmp_path / "lens.sqlite"
    ledger = make_ledger(path)
    dc.start_watermark(ledger, now_ms=T0)
    workers = {"w1": (T0 + 500, None), "w2": (T0 + 1_000, None)}
    first = dc.charge(ledger, snapshot(T0 + 4_000, workers), RATES, ACCOUNTS)
    assert first.total_microusd > 0 and dc.current_watermark(ledger) == T0 + 4_000
    # the same snapshot again (a retried tick): nothing more
    assert dc.charge(ledger, snapshot(T0 + 4_000, workers), RATES, ACCOUNTS).intervals == []
    ledger.engine.dispose()

    # "restart": a new engine and ledger on the same file, 30 s of downtime later;
    # w2 stopped while the service was down
    ledger = make_ledger(path)
    assert dc.start_watermark(ledger, now_ms=T0 + 34_000) == T0 + 4_000
    workers["w2"] = (T0 + 1_000, T0 + 20_000)
    second = dc.charge(ledger, snapshot(T0 + 34_000, workers), RATES, ACCOUNTS)
    assert [(i.worker, i.start_ms, i.end_ms) for i in second.intervals] == [
        ("w1", T0 + 4_000, T0 + 34_000), ("w2", T0 + 4_000, T0 + 20_000)]

    rows = dask_rows(ledger)
    spans = charged_ms(rows)
    assert spans == {"c1/w1": [(T0 + 500, T0 + 4_000), (T0 + 4_000, T0 + 34_000)],
                     "c1/w2": [(T0 + 1_000, T0 + 4_000), (T0 + 4_000, T0 + 20_000)]}
    worker_ms = sum(e - s for v in spans.values() for s, e in v)
    assert worker_ms == (34_000 - 500) + (20_000 - 1_000)  # every running ms, once
    total = sum(amount for _, amount in rows)
    assert total == first.total_microusd + second.total_microusd
    assert abs(total - cost_microusd(RATE, worker_ms)) <= len(rows)  # per-interval rounding
    # the group and the hub were charged the same
    assert sum(a for _, a in dask_rows(ledger, "group:lab")) == total
    assert ledger.summary("user:alice").by_category == {"dask": total}
    assert ledger.verify() == []


def test_a_failed_charge_books_nothing_and_keeps_the_watermark(tmp_path):
    ledger = make_ledger(tmp_path / "lens.sqlite")
    dc.start_watermark(ledger, now_ms=T0)
    snap = {"now": T0 + 5_000, "clusters": [
        *snapshot(T0 + 5_000, {"w1": (T0, None)})["clusters"],
        *snapshot(T0 + 5_000, {"w1": (T0, None)}, user="carol", cluster="c2")["clusters"]]}
    with pytest.raises(RuntimeError, match="no ledger accounts given for user.s. carol"):
        dc.charge(ledger, snap, RATES, ACCOUNTS)
    assert dask_rows(ledger) == [] and dc.current_watermark(ledger) == T0
    done = dc.charge(ledger, snap, RATES, {**ACCOUNTS, "carol": ["user:carol"]})
    assert {i.user for i in done.intervals} == {"alice", "carol"}


def test_two_instances_racing_charge_each_interval_once(tmp_path):
    """Old and new service processes overlapping on one database (separate engines)."""
    path = tmp_path / "lens.sqlite"
    dc.start_watermark(make_ledger(path), now_ms=T0)
    ledgers = [make_ledger(path), make_ledger(path)]
    workers = {"w1": (T0, None), "w2": (T0, None)}
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run(ledger):
        try:
            for step in range(1, 11):
                barrier.wait()
                results.append(dc.charge(ledger, snapshot(T0 + step * 1_000, workers), RATES, ACCOUNTS))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(lg,)) for lg in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    rows = dask_rows(ledgers[0])
    spans = charged_ms(rows)
    for worker in ("c1/w1", "c1/w2"):
        got = sorted(spans[worker])
        assert got[0][0] == T0 and got[-1][1] == T0 + 10_000
        assert all(a[1] == b[0] for a, b in zip(got, got[1:], strict=False)), got  # no gap, no overlap
    assert len({ref for ref, _ in rows}) == len(rows)
    assert sum(len(r.intervals) for r in results) == len(rows)
