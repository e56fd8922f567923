"""Persisted usage intervals: accrued incrementally, exact, and correct across hub restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import Ledger
from jupyter_ext.costs.meter import min_storage_seconds, storage_rate
from jupyter_ext.costs.usage import UsageMeter

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def micro(frac):
    return int((Fraction(frac) * 1_000_000 + Fraction(1, 2)) // 1)


def test_incremental_accrual_is_exact_and_survives_restart(db_url, catalog):
    rate = catalog.hourly("g5.xlarge")
    eng = make_engine(db_url)
    meter = UsageMeter(Ledger(eng))
    meter.start("server:alice/", "servers", ["user:alice", "group:lab"], rate, at=T0,
                snapshot=catalog.info.as_dict(), detail={"profile": "gpu"})
    booked = 0
    for minutes in (1, 7, 13, 59, 61):  # odd steps: rounding must not drift
        booked += meter.accrue(T0 + timedelta(minutes=minutes, seconds=17))
    eng.dispose()  # the hub goes away...

    eng2 = make_engine(db_url)  # ...and comes back with a fresh process
    ledger2 = Ledger(eng2)
    meter2 = UsageMeter(ledger2)
    # the restarted hub re-reports the running server: no second interval
    meter2.start("server:alice/", "servers", ["user:alice"], rate, at=T0 + timedelta(hours=1, minutes=5))
    assert len(meter2.open_intervals()) == 1
    booked += meter2.accrue(T0 + timedelta(hours=1, minutes=30))
    total = meter2.stop("server:alice/", at=T0 + timedelta(hours=2))
    expected = micro(Fraction(str(rate)) * 2)  # two hours at the profile rate
    assert total == expected
    s = ledger2.summary("user:alice", T0)
    assert s.spent_micro == expected == ledger2.summary("group:lab", T0).spent_micro
    assert s.by_category["servers"] == expected
    assert meter2.open_intervals() == []
    assert meter2.intervals("server:alice/")[0]["snapshot"]["date"] == catalog.info.date
    assert meter2.stop("server:alice/") is None  # already stopped
    # a second session of the same server is a new interval
    meter2.start("server:alice/", "servers", ["user:alice"], rate, at=T0 + timedelta(hours=3))
    meter2.stop("server:alice/", at=T0 + timedelta(hours=3, minutes=30))
    assert ledger2.summary("user:alice", T0).spent_micro == expected + micro(Fraction(str(rate)) / 2)
    assert ledger2.verify() == []
    eng2.dispose()


def test_close_stale_after_restart(ledger):
    meter = UsageMeter(ledger)
    meter.start("server:a/", "servers", ["user:a"], "1.0", at=T0)
    meter.start("server:b/", "servers", ["user:b"], "1.0", at=T0)
    meter.start("archive:x", "storage", ["user:a"], "0.001", at=T0)
    stale = meter.close_stale(["server:a/"], at=T0 + timedelta(minutes=30), category="servers")
    assert stale == ["server:b/"]
    assert ledger.summary("user:b", T0).spent_micro == 500_000
    assert {r["ref"] for r in meter.open_intervals()} == {"server:a/", "archive:x"}


def test_dask_rescale_changes_rate(ledger):
    meter = UsageMeter(ledger)
    worker = Fraction("0.1008")
    meter.start("dask:alice.abc", "dask", ["user:alice"], "0.2016", at=T0)  # 2 workers
    meter.rescale("dask:alice.abc", "1.008", at=T0 + timedelta(minutes=30))  # 10 workers
    meter.stop("dask:alice.abc", at=T0 + timedelta(minutes=45))
    expected = micro(worker * 2 / 2) + micro(worker * 10 / 4)
    assert ledger.summary("user:alice", T0).by_category["dask"] == expected
    with pytest.raises(ValueError, match="no open interval"):
        meter.rescale("dask:nope", "1")


def test_archive_storage_accrues_and_pays_early_deletion(ledger, catalog):
    meter = UsageMeter(ledger)
    size, n = 200 * 2**30, 400
    rate, _, _ = storage_rate(catalog, "DEEP_ARCHIVE", size, n)
    meter.start("archive:alice/run42", "storage", ["user:alice", "group:lab"], rate, at=T0,
                min_seconds=min_storage_seconds(catalog, "DEEP_ARCHIVE"))
    meter.accrue(T0 + timedelta(days=20))
    assert ledger.summary("user:alice", T0).spent_micro == micro(Fraction(str(rate)) * 24 * 20)
    total = meter.stop("archive:alice/run42", at=T0 + timedelta(days=45))  # deleted early
    assert total == micro(Fraction(str(rate)) * 24 * 180)  # the 180-day minimum is billed
    refs = {r["ref"] for r in ledger.spend_rows(T0, T0 + timedelta(days=60), ["user:alice"])}
    assert "archive:alice/run42#early-deletion" in refs


def test_bad_interval_input(ledger):
    meter = UsageMeter(ledger)
    with pytest.raises(ValueError, match="category"):
        meter.start("x", "gpu", ["user:a"], "1")
    with pytest.raises(ValueError, match="rate_usd_hour"):
        meter.start("x", "servers", ["user:a"], "-1")
    with pytest.raises(TypeError, match="rate_usd_hour"):
        meter.start("x", "servers", ["user:a"], 1.5)


def test_over_limit_refs_lists_servers_of_blocked_accounts(ledger):
    from jupyter_ext.costs.usage import over_limit_refs

    meter = UsageMeter(ledger)
    ledger.set_budget("user:poor", 1_000_000)
    meter.start("server:poor/", "servers", ["user:poor"], "1.0", at=T0)
    meter.start("server:rich/", "servers", ["user:rich"], "1.0", at=T0)
    assert over_limit_refs(meter, now=T0) == []
    meter.accrue(T0 + timedelta(hours=1))  # $1 spent: 100 %
    assert over_limit_refs(meter, now=T0) == ["server:poor/"]
    ledger.override("user:poor", by="admin", now=T0)
    assert over_limit_refs(meter, now=T0) == []


def test_accrual_step_limits_journal_rows_but_not_the_total(ledger):
    meter = UsageMeter(ledger)
    meter.start("archive:big", "storage", ["user:s"], "0.36", at=T0)  # default step: 1 hour
    meter.start("server:s/", "servers", ["user:s"], "0.36", at=T0, step_seconds=0)  # every call
    for minute in range(1, 121):
        meter.accrue(T0 + timedelta(minutes=minute))
    rows = ledger.spend_rows(T0, T0 + timedelta(days=1), ["user:s"])
    assert sum(r["ref"] == "archive:big" for r in rows) == 2  # at 60 and 120 minutes
    assert sum(r["ref"] == "server:s/" for r in rows) == 120
    meter.accrue(T0 + timedelta(minutes=150))  # under a step since the last: skipped
    assert meter.stop("archive:big", at=T0 + timedelta(minutes=150)) == 900_000  # stop books all
    assert ledger.summary("user:s", T0).by_category["storage"] == 900_000


def test_orphan_start_holds_are_released_but_live_and_young_ones_kept(ledger):
    from jupyter_ext.costs.usage import release_orphan_holds

    D = 1_000_000
    ledger.set_budget("user:o", 10 * D)
    old = T0 - timedelta(hours=1)
    orphan = ledger.hold(["user:o"], 1 * D, "servers", "server:o/", now=old)
    live = ledger.hold(["user:o"], 1 * D, "servers", "server:o/named", now=old)
    young = ledger.hold(["user:o"], 1 * D, "servers", "server:o/other", now=T0)
    job = ledger.hold(["user:o"], 1 * D, "jobs", "job-1", now=old)
    assert release_orphan_holds(ledger, {"server:o/named"}, 900, now=T0) == [orphan]
    assert ledger.get_hold(orphan)["status"] == "released"
    assert [ledger.get_hold(h)["status"] for h in (live, young, job)] == ["open"] * 3
    assert release_orphan_holds(ledger, {"server:o/named"}, 900, now=T0) == []  # idempotent
    assert ledger.verify() == []


def test_server_refs_round_trip():
    from jupyter_ext.costs.usage import parse_server_ref, server_ref

    assert server_ref("ann") == "server:ann/" and parse_server_ref("server:ann/") == ("ann", "")
    assert parse_server_ref(server_ref("ann", "gpu")) == ("ann", "gpu")
    assert [parse_server_ref(r) for r in ("dask:c/w:1-2", "server:/x", "server:ann", "archive:1")] == [None] * 4
