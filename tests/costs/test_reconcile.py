"""`lens costs reconcile` against moto's Cost Explorer (results set via its static API)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import boto3
import requests

from jupyter_ext.cli.main import main
from jupyter_ext.costs.reconcile import fetch_costs_by_tag, metered_by_user, reconcile, report_text

D = 1_000_000


def _group(user, amount):
    return {"Keys": [f"lens:user${user}"],
            "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}}


def _queue(endpoint, *results):
    resp = requests.post(f"{endpoint}/moto-api/static/ce/cost-and-usage-results",
                         json={"results": list(results)}, timeout=10)
    assert resp.status_code == 201


def _month(start, end, groups, token=None):
    out = {"ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Total": {},
                              "Groups": groups, "Estimated": False}],
           "DimensionValueAttributes": []}
    if token:
        out["NextPageToken"] = token
    return out


def test_fetch_pages_and_tags(aws_env):
    _queue(aws_env,
           _month("2025-01-01", "2025-02-01", [_group("alice", "10.5"), _group("", "2.25")], token="p2"),
           _month("2025-01-01", "2025-02-01", [_group("alice", "0.5"), _group("bob", "3.000001")]))
    ce = boto3.client("ce", region_name="us-east-1")
    got = fetch_costs_by_tag(ce, date(2025, 1, 1), date(2025, 2, 1))
    assert got == {"alice": 11 * D, "(untagged)": 2_250_000, "bob": 3_000_001}


def test_reconcile_reports_difference_from_meter(aws_env, ledger, db_url, capsys):
    jan = datetime(2025, 3, 10, tzinfo=UTC)
    ledger.record(["user:alice", "group:lab"], 10 * D, "servers", "server:alice/", now=jan)
    ledger.record(["user:bob"], 4 * D, "jobs", "job-1", now=jan)
    ledger.record(["user:carol"], 1 * D, "storage", "archive:carol/x", now=jan)
    _queue(aws_env, _month("2025-03-01", "2025-04-01",
                           [_group("alice", "10.40"), _group("bob", "6.00"), _group("dave", "1.00")]))
    ce = boto3.client("ce", region_name="us-east-1")
    start, end = date(2025, 3, 1), date(2025, 4, 1)
    rows = {r["user"]: r for r in reconcile(metered_by_user(ledger, start, end),
                                            fetch_costs_by_tag(ce, start, end), tolerance_pct=10)}
    assert rows["alice"]["diff_micro"] == 400_000 and not rows["alice"]["flag"]  # 4 % off
    assert rows["bob"]["diff_micro"] == 2 * D and rows["bob"]["flag"]
    assert rows["carol"]["actual_micro"] == 0 and rows["carol"]["flag"]  # metered, not billed
    assert rows["dave"]["metered_micro"] == 0 and rows["dave"]["flag"]  # billed, never metered
    assert "group" not in json.dumps(list(rows))  # only user accounts are reconciled

    # the CLI, same period: moto answers the same request body with the same result
    rc = main(["costs", "reconcile", "--db", db_url, "--start", "2025-03-01", "--end", "2025-04-01"])
    out = capsys.readouterr().out
    assert rc == 0 and "bob" in out and "<-- check" in out and "TOTAL" in out
    rc = main(["costs", "reconcile", "--db", db_url, "--start", "2025-03-01", "--end", "2025-04-01",
               "--json", "--fail-on-diff"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 1 and {r["user"] for r in data["rows"]} == {"alice", "bob", "carol", "dave"}


def test_reconcile_cli_bad_dates(capsys, db_url):
    assert main(["costs", "reconcile", "--db", db_url, "--start", "March"]) == 2
    assert "--start: 'March' is not a date" in capsys.readouterr().err
    assert main(["costs", "reconcile", "--db", db_url, "--start", "2025-03-02", "--end", "2025-03-01"]) == 2


def test_report_text_totals():
    rows = reconcile({"a": 5 * D}, {"a": 6 * D})
    text = report_text(rows, date(2025, 1, 1), date(2025, 2, 1))
    assert "$5.00" in text and "$6.00" in text and "+16.6" in text
