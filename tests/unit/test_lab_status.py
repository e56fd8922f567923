"""The JupyterLab status bar's figures (jupyter_ext/server/summary.py) from a cost report."""

from __future__ import annotations

import pytest

from jupyter_ext.server.summary import budget_level, status_summary

D = 1_000_000


def report(budget, spent, held=0, thresholds=(50, 80, 100), blocked=False):
    available = None if budget is None else budget - spent - held
    return {"budget_micro": budget, "spent_micro": spent, "held_micro": held, "available_micro": available,
            "thresholds": list(thresholds), "blocked": blocked,
            "period": {"key": "k", "start": "2026-12-01T00:00:00+00:00", "end": "2027-01-01T00:00:00+00:00"}}


@pytest.mark.parametrize(("pct", "level"), [(None, "none"), (0, "ok"), (49.9, "ok"), (50, "warn"),
                                            (99.9, "warn"), (100, "over"), (130, "over")])
def test_levels_follow_the_thresholds(pct, level):
    assert budget_level(pct, [50, 80, 100]) == level


def test_no_budget_shows_no_budget_and_no_level():
    s = status_summary(report(None, 3 * D), 0.096, "lab")
    assert (s["budget_usd"], s["remaining_usd"], s["used_pct"], s["level"], s["passed"]) == (None, None, None, "none", None)
    assert s["spent_usd"] == 3.0 and s["hourly_cost_usd"] == 0.096 and s["profile"] == "lab"


def test_held_money_counts_towards_the_thresholds():
    s = status_summary(report(10 * D, 7 * D, held=1 * D), 0.5, "lab")
    assert s["used_pct"] == 80.0 and s["passed"] == 80 and s["level"] == "warn"
    assert s["remaining_usd"] == 2.0 and s["budget_usd"] == 10.0 and s["held_usd"] == 1.0
    assert s["period_start"].startswith("2026-12-01")


def test_spent_budget_is_over():
    s = status_summary(report(5 * D, 5 * D, blocked=True), 0.0, "")
    assert s["level"] == "over" and s["passed"] == 100 and s["remaining_usd"] == 0.0 and s["blocked"]
