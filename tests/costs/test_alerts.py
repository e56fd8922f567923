"""Standing budget alerts and the hub banner built from them."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from jupyter_ext.hub.banner import BudgetBanner, render_banner

D = 1_000_000
NOW = datetime(2026, 12, 10, 12, tzinfo=UTC)


def test_active_alerts_show_the_highest_standing_threshold(ledger):
    ledger.set_budget("user:a", 10 * D)
    ledger.set_budget("group:lab", 100 * D)
    ledger.set_budget("user:quiet", 10 * D)
    assert ledger.active_alerts(now=NOW) == []
    ledger.record(["user:a", "group:lab"], 6 * D, "servers", "s", now=NOW)  # a: 60 %, lab: 6 %
    assert [(e.account, e.threshold) for e in ledger.active_alerts(now=NOW)] == [("user:a", 50)]
    ledger.record(["user:a"], 4 * D, "jobs", "j", now=NOW)  # 100 %
    (alert,) = ledger.active_alerts(now=NOW)
    assert (alert.threshold, alert.blocked, alert.spent_micro, alert.budget_micro) == (100, True, 10 * D, 10 * D)
    # only the accounts asked for
    assert ledger.active_alerts(["user:quiet", "group:lab"], now=NOW) == []
    # an admin raises the budget: the 100 % alert no longer stands, the 50 % one does
    ledger.set_budget("user:a", 15 * D)
    assert [e.threshold for e in ledger.active_alerts(now=NOW)] == [50]
    # a new month starts without alerts
    assert ledger.active_alerts(now=datetime(2027, 1, 2, tzinfo=UTC)) == []


def test_banner_words_for_user_and_group_alerts():
    alerts = [
        {"account": "user:ann", "threshold": 80, "spent_micro": 8 * D, "budget_micro": 10 * D,
         "period_key": "2026-12", "blocked": False},
        {"account": "group:bio101", "threshold": 100, "spent_micro": 40 * D, "budget_micro": 40 * D,
         "period_key": "window:x", "blocked": True},
        {"account": "user:bob", "threshold": 50, "spent_micro": 5 * D, "budget_micro": 10 * D,
         "period_key": "2026-12", "blocked": False},
    ]
    html = render_banner(alerts, "ann", ["bio101"], base="<b>Maintenance Friday</b>")
    assert html.startswith("<b>Maintenance Friday</b>")
    assert "Your budget for 2026-12 has passed 80%: $8.00 of $10.00 used." in html
    assert "The budget of group bio101" in html and "refused until an admin" in html
    assert "bob" not in html  # another user's alert never shows
    assert render_banner(alerts, "carol", []) == ""
    evil = [{**alerts[0], "account": "group:<script>", "period_key": "<img src=x>"}]
    assert "<script>" not in render_banner(evil, "ann", ["<script>"])


class _Alerts(BaseHTTPRequestHandler):
    calls: list[str] = []
    payload: dict = {"alerts": []}

    def do_GET(self):  # noqa: N802 - http.server's name
        _Alerts.calls.append(self.headers.get("Authorization", ""))
        body = json.dumps(_Alerts.payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def alerts_server():
    _Alerts.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Alerts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/lens/", _Alerts
    server.shutdown()
    server.server_close()


async def test_banner_renders_from_cache_and_refreshes_in_the_background(alerts_server):
    url, handler = alerts_server
    handler.payload = {"alerts": [{"account": "user:ann", "threshold": 50, "spent_micro": 5 * D,
                                   "budget_micro": 10 * D, "period_key": "2026-12", "blocked": False}]}
    banner = BudgetBanner(url, "secret", base="hello", ttl=60)
    ann = SimpleNamespace(name="ann", groups=[])
    assert banner(ann) == "hello"  # first render: nothing cached yet, a refresh starts
    await asyncio.wait_for(banner._task, 5)
    assert "passed 50%" in banner(ann)
    assert banner(None) == "hello"
    assert handler.calls == ["token secret"]  # within ttl: no second request


async def test_banner_survives_a_dead_service():
    banner = BudgetBanner("http://127.0.0.1:9/services/lens/", "t", ttl=0, timeout=0.5)
    banner.alerts = [{"account": "user:ann", "threshold": 80, "spent_micro": 8 * D,
                      "budget_micro": 10 * D, "period_key": "2026-12", "blocked": False}]
    user = SimpleNamespace(name="ann", groups=[])
    assert "passed 80%" in banner(user)
    await asyncio.wait_for(banner._task, 5)
    assert "passed 80%" in banner(user)  # the last alerts stay
