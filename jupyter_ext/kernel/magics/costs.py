"""%costs: spend this period by category, the budget, what remains, a forecast, a plot."""

from __future__ import annotations

from html import escape

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import HTML, Image, display

from jupyter_ext.constants import CATEGORIES
from jupyter_ext.kernel.magics.common import client, lens_errors


def money(micro) -> str:
    return "—" if micro is None else f"${micro / 1_000_000:,.2f}"


def render_report(report: dict) -> str:
    """HTML summary of a costs report (pure, for tests)."""
    by_cat = report.get("by_category") or {}
    rows = "".join(
        f"<tr><td>{c}</td><td style='text-align:right'>{money(by_cat.get(c, 0))}</td></tr>" for c in CATEGORIES
    )
    fc = report.get("forecast") or {}
    if fc.get("exhausts_at"):
        when = fc["exhausts_at"][:10]
        warn = " (before the period ends)" if fc.get("exhausts_before_period_end") else ""
        forecast = f"At the current burn rate ({money(fc.get('burn_micro_per_day'))}/day) the budget runs out on {when}{warn}."
    elif fc.get("burn_micro_per_day"):
        forecast = f"Burn rate: {money(fc['burn_micro_per_day'])}/day."
    else:
        forecast = "No spending in the last days."
    period = report.get("period") or {}
    snap = report.get("snapshot") or {}
    return (
        # tex2jax_ignore/mathjax_ignore: JupyterLab typesets HTML outputs, and two
        # dollar amounts on a line would be read as a LaTeX formula
        f"<div class='lens-costs tex2jax_ignore mathjax_ignore'><b>{escape(str(report.get('account', '')))}</b> — period "
        f"{escape(str(period.get('key', '')))}<br>"
        f"<table><tr><th>category</th><th>spent</th></tr>{rows}"
        f"<tr><td><b>total</b></td><td style='text-align:right'><b>{money(report.get('spent_micro'))}</b></td></tr>"
        f"</table>"
        f"Budget: {money(report.get('budget_micro'))} · held: {money(report.get('held_micro'))} · "
        f"remaining: {money(report.get('remaining_micro'))}<br>{escape(forecast)}"
        f"<br><small>prices: {escape(str(snap.get('date', '')))} {escape(str(snap.get('source', '')))}</small></div>"
    )


def plot_png(report: dict) -> bytes:
    """The daily spend plot as PNG: shown the same whatever matplotlib backend the kernel
    has (displaying the Figure itself prints its repr without the inline backend)."""
    from jupyter_ext.costs.plots import report_figure, to_png

    return to_png(report_figure(report))  # a pyplot-free Figure: nothing to close


def running_cluster_costs() -> list[dict]:
    """Live $/h and accrued cost of this user's Dask clusters (empty without a gateway)."""
    import os

    if not os.environ.get("DASK_GATEWAY__ADDRESS"):
        return []
    try:
        from jupyter_ext.gateway.metering import my_cluster_costs

        return my_cluster_costs()
    except Exception:  # the gateway is optional for %costs; never fail the report on it
        return []


def clusters_html(clusters: list[dict]) -> str:
    rows = "".join(
        f"<tr><td>{escape(str(c.get('name', c.get('cluster', ''))))}</td><td>{c.get('workers', '')}</td>"
        f"<td>${float(c.get('usd_per_hour', 0)):,.3f}/h</td><td>${float(c.get('accrued_usd', 0)):,.4f}</td></tr>"
        for c in clusters
    )
    return (
        "<div class='tex2jax_ignore mathjax_ignore'><b>Running Dask clusters</b> (charged as they run)<table><tr><th>cluster</th><th>workers</th>"
        f"<th>rate</th><th>accrued</th></tr>{rows}</table></div>"
    )


@magics_class
class CostsMagics(Magics):
    @magic_arguments()
    @argument("--group", "-g", default="", help="show a group's (lab's, class's) costs; you must be a member")
    @argument("--no-plot", action="store_true", help="skip the daily spend plot")
    @line_magic
    def costs(self, line):
        """Show spending this period by category (servers, Dask, jobs, storage), the
        budget, what remains, a burn-rate forecast and a plot of daily spend."""
        args = parse_argstring(self.costs, line)
        params = {"group": args.group} if args.group else None
        with lens_errors():
            report = client().service("GET", "costs", params=params)
        display(HTML(render_report(report)))
        clusters = running_cluster_costs()
        if clusters:
            display(HTML(clusters_html(clusters)))
        if not args.no_plot and any(v for _, v in report.get("daily") or []):
            display(Image(data=plot_png(report), format="png"))
        return None
