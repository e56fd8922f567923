"""Daily-spend plots for ``%costs`` and the admin page (matplotlib, no pyplot state).

``daily_figure`` returns a ``matplotlib.figure.Figure`` (a notebook displays
it as is); ``to_png`` / ``to_svg`` render it for the admin page.
"""

from __future__ import annotations

import io
from datetime import date
from typing import TYPE_CHECKING

from .money import MICRO

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def daily_figure(dates: list[str], series: dict[str, list[int]], title: str = "Daily spend",
                 budget_per_day_micro: int | None = None) -> Figure:
    """Stacked bars of micro-dollar series per day (e.g. per category), in dollars."""
    # imported here: the lens service, which imports this module for the admin page,
    # then starts (and the hub after it) about 0.7 s sooner
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), layout="constrained")
    ax = fig.add_subplot()
    x = [date.fromisoformat(d) for d in dates]
    bottom = [0.0] * len(x)
    for name, values in series.items():
        if not any(values):
            continue
        dollars = [v / MICRO for v in values]  # display only; the books stay integers
        ax.bar(x, dollars, bottom=bottom, label=name, width=0.8)
        bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
    if budget_per_day_micro:
        ax.axhline(budget_per_day_micro / MICRO, linestyle="--", color="grey", label="budget / day")
    ax.set_title(title)
    ax.set_ylabel("USD")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    return fig


def report_figure(report: dict) -> Figure:
    """The ``%costs`` plot from ``reports.costs_report`` output."""
    dates = [d for d, _ in report["daily"]]
    per_day = None
    if report.get("budget_micro"):
        start, end = report["period"]["start"][:10], report["period"]["end"][:10]
        days = max((date.fromisoformat(end) - date.fromisoformat(start)).days, 1)
        per_day = report["budget_micro"] // days
    return daily_figure(dates, {"spend": [v for _, v in report["daily"]]},
                        f"{report['account']}: daily spend, {report['period']['key']}", per_day)


def to_png(fig: Figure, dpi: int = 96) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()
