from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from jupyter_ext.costs.reports import (
    admin_tables,
    all_summaries,
    costs_report,
    daily_series,
    prometheus_text,
    to_csv,
)

D = 1_000_000
START = datetime(2026, 8, 1, tzinfo=UTC)


def _fill(ledger):
    ledger.set_budget("user:ann", 100 * D)
    ledger.set_budget("group:lab", 500 * D)
    for day in range(10):  # $2/day of servers, plus a $5 job on day 3
        ledger.record(["user:ann", "group:lab"], 2 * D, "servers", "server:ann/",
                      now=START + timedelta(days=day, hours=12))
    h = ledger.hold(["user:ann", "group:lab"], 8 * D, "jobs", "job-7", now=START + timedelta(days=3))
    ledger.charge(h, 5 * D, now=START + timedelta(days=3, hours=1))
    ledger.record(["user:bob"], 3 * D, "storage", "archive:bob/x", now=START + timedelta(days=2))
    ledger.hold(["user:ann", "group:lab"], 1 * D, "dask", "dask:ann.1", now=START + timedelta(days=9))


def test_costs_report_for_percosts(ledger):
    _fill(ledger)
    now = START + timedelta(days=10)  # Aug 11 00:00
    rep = costs_report(ledger, "user:ann", now, snapshot={"date": "2026-11-24"})
    assert rep["by_category"] == {"servers": 20 * D, "dask": 0, "jobs": 5 * D, "storage": 0}
    assert rep["budget_micro"] == 100 * D and rep["held_micro"] == 1 * D
    assert rep["remaining_micro"] == 100 * D - 25 * D - 1 * D
    # burn over the last 7 days (Aug 4..11): 7 x $2 servers + the $5 job = $19 -> $19/7 a day
    fc = rep["forecast"]
    burn = 19 * D // 7
    assert fc["burn_micro_per_day"] == burn
    runs_out = now + timedelta(seconds=74 * D * 86400 // burn)  # Sep 7: after the period ends
    assert fc["exhausts_at"] == runs_out.isoformat() and not fc["exhausts_before_period_end"]
    daily = dict(rep["daily"])
    assert len(rep["daily"]) == 11 and daily["2026-08-04"] == 7 * D and daily["2026-08-11"] == 0
    assert sum(v for _, v in rep["daily"]) == 25 * D
    assert rep["snapshot"]["date"] == "2026-11-24"


def test_forecast_exhaustion_within_period(ledger):
    ledger.set_budget("user:fast", 30 * D)
    for day in range(5):
        ledger.record("user:fast", 5 * D, "dask", "d", now=START + timedelta(days=day, hours=1))
    fc = costs_report(ledger, "user:fast", START + timedelta(days=5))["forecast"]
    assert fc["burn_micro_per_day"] == 5 * D  # 25 over 5 days
    assert fc["exhausts_at"].startswith("2026-08-07") and fc["exhausts_before_period_end"]
    ledger.record("user:fast", 5 * D, "dask", "d", now=START + timedelta(days=5))
    assert costs_report(ledger, "user:fast", START + timedelta(days=5, hours=1))["forecast"][
        "exhausts_at"].startswith("2026-08-06")  # already out: now


def test_admin_tables_csv_and_series(ledger):
    _fill(ledger)
    end = START + timedelta(days=31)
    t = admin_tables(ledger, START, end, now=START + timedelta(days=10))
    users = {r["account"]: r for r in t["users"]}
    assert users["user:ann"]["total_micro"] == 25 * D and users["user:bob"]["storage"] == 3 * D
    assert users["user:bob"]["budget_micro"] is None
    assert [g["account"] for g in t["groups"]] == ["group:lab"]
    cats = {c["category"]: c["total_micro"] for c in t["categories"]}
    assert cats == {"servers": 20 * D, "dask": 0, "jobs": 5 * D, "storage": 3 * D}  # no double count
    assert len(t["series"]["dates"]) == 31 and sum(t["series"]["series"]["servers"]) == 20 * D
    text = to_csv(t["users"], ["name", "servers", "jobs", "storage", "total_micro", "budget_micro", "blocked"])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0] == {"name": "ann", "servers_usd": "20.000000", "jobs_usd": "5.000000",
                       "storage_usd": "0.000000", "total_usd": "25.000000", "budget_usd": "100.000000",
                       "blocked": "False"}
    assert rows[1]["budget_usd"] == ""  # bob has no budget
    assert to_csv([]) == ""


def test_prometheus_exposition(ledger):
    _fill(ledger)
    summaries = all_summaries(ledger, START + timedelta(days=10))
    odd = replace(summaries[0], account='user:we"ird\\x')  # the ledger refuses such names; escape anyway
    text = prometheus_text([*summaries, odd])
    lines = text.splitlines()
    assert "# TYPE lens_cost_spent_usd gauge" in lines
    assert 'lens_cost_spent_usd{account="user:ann",kind="user",period="2026-08",category="jobs"} 5.000000' in lines
    assert 'lens_cost_available_usd{account="user:ann",kind="user",period="2026-08"} 74.000000' in lines
    assert 'lens_cost_budget_blocked{account="user:ann",kind="user",period="2026-08"} 0' in lines
    assert 'account="user:we\\"ird\\\\x"' in text
    assert not any(line.startswith("lens_cost_budget_usd") and "user:bob" in line for line in lines)
    for line in lines:  # every sample line parses as name{labels} value
        if not line.startswith("#"):
            assert line.rsplit(" ", 1)[1].replace(".", "").lstrip("-").isdigit(), line


def test_daily_series_zero_fills():
    rows = [{"at": START + timedelta(days=2, hours=23), "amount_micro": 5}]
    assert daily_series(rows, START, START + timedelta(days=4)) == [
        ("2026-08-01", 0), ("2026-08-02", 0), ("2026-08-03", 5), ("2026-08-04", 0)]


def test_costs_csv_neutralises_formulas():
    """Finding 9: names and labels in the costs export never run as formulas;
    money stays numeric (a refund is a plain negative number)."""
    rows = [{"name": '=HYPERLINK("http://evil.example","x")', "account": "@SUM(A1)",
             "total_micro": -1_500_000, "note": "-1+2"},
            {"name": "ann", "account": "user:ann", "total_micro": 2_000_000, "note": "fine"}]
    got = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert got[0] == {"name": '\'=HYPERLINK("http://evil.example","x")', "account": "'@SUM(A1)",
                      "total_usd": "-1.500000", "note": "'-1+2"}
    assert got[1] == {"name": "ann", "account": "user:ann", "total_usd": "2.000000",
                      "note": "fine"}
