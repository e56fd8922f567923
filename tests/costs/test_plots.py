from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jupyter_ext.costs.plots import daily_figure, report_figure, to_png, to_svg
from jupyter_ext.costs.reports import admin_tables, costs_report

START = datetime(2026, 2, 1, tzinfo=UTC)


def test_report_and_admin_figures_render(ledger):
    ledger.set_budget("user:p", 28_000_000)
    for day in range(5):
        ledger.record("user:p", (day + 1) * 100_000, "servers", "s", now=START + timedelta(days=day))
    rep = costs_report(ledger, "user:p", START + timedelta(days=4, hours=1))
    fig = report_figure(rep)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 5 and [round(b.get_height(), 6) for b in bars] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert ax.lines[0].get_ydata()[0] == 1.0  # $28 over 28 days of February
    assert to_png(fig).startswith(b"\x89PNG")
    t = admin_tables(ledger, START, START + timedelta(days=7))
    svg = to_svg(daily_figure(t["series"]["dates"], t["series"]["series"], "hub"))
    assert svg.lstrip().startswith("<?xml") and "servers" in svg
