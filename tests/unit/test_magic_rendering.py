"""What the magics show reads as text a person expects, not as reprs or LaTeX."""

from __future__ import annotations

from IPython.core.formatters import DisplayFormatter

from jupyter_ext.gateway.metering import Rates, live_costs
from jupyter_ext.kernel.magics.archive import hours_text, plan_html, tier_cost_text
from jupyter_ext.kernel.magics.atom import versions_text
from jupyter_ext.kernel.magics.common import shown
from jupyter_ext.kernel.magics.costs import plot_png, render_report


def test_dollar_amounts_are_not_typeset_as_math():
    html = render_report({"account": "user:ann", "spent_micro": 100_000, "held_micro": 100_000,
                          "period": {"key": "2026-12"}, "forecast": {"burn_micro_per_day": 0}})
    assert "held: $0.10" in html and html.count("$") >= 2
    assert "tex2jax_ignore" in html and "mathjax_ignore" in html  # JupyterLab's MathJax skips it


def test_a_result_the_magic_already_showed_has_no_repr_in_the_cell():
    formatter = DisplayFormatter()
    task = shown({"status": "done", "result": {"archive": {"id": "a1"}}})
    assert formatter.format(task) == ({}, {})
    assert formatter.format(shown([{"name": "run-1"}])) == ({}, {})
    assert task["status"] == "done" and task == {"status": "done", "result": {"archive": {"id": "a1"}}}
    assert formatter.format({"status": "done"})[0]  # a plain dict still shows


def test_versions_and_restore_times_read_as_text():
    assert versions_text({"versions": ["14.4.3", "14.3.1"]}) == "14.4.3, 14.3.1"
    assert versions_text({"version": "2.1"}) == "2.1"
    assert hours_text([0.0, 0.0]) == "minutes"
    assert hours_text([3, 5]) == "3–5 h"
    assert hours_text([12, 12]) == "12 h"
    assert tier_cost_text({"cost_micro": 1_234_500}) == "$1.2345"
    html = plan_html({"name": "run", "estimates": [{"tier": "bulk", "cost_micro": 0, "hours": [5.0, 12.0]}]})
    assert "5–12 h" in html and "[" not in html


def test_the_plot_is_a_png_whatever_the_backend():
    png = plot_png({"account": "user:ann", "daily": [["2026-12-01", 10_000], ["2026-12-02", 0]],
                    "period": {"key": "2026-12", "start": "2026-12-01", "end": "2027-01-01"},
                    "budget_micro": 10_000_000})
    assert png.startswith(b"\x89PNG")


def test_a_cluster_shut_down_is_no_longer_listed_as_running():
    def cluster(name, status):
        return {"name": name, "username": "ann", "status": status, "start_time": 0, "stop_time": None,
                "config": {}, "workers": []}

    snapshot = {"now": 60_000, "clusters": [cluster("c-run", "RUNNING"), cluster("c-stop", "STOPPING")]}
    assert [c["name"] for c in live_costs(snapshot, Rates(core_hour_microusd=40_000, gib_hour_microusd=5_000))] == ["c-run"]
