from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jupyter_ext.costs.ledger import BudgetExceeded, HoldError, Ledger
from jupyter_ext.costs.notify import CallbackNotifier, WebhookNotifier

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
D = 1_000_000  # one dollar


def check_invariant(ledger, account, now=NOW):
    s = ledger.summary(account, now)
    if s.budget_micro is not None:
        assert s.budget_micro == s.available_micro + s.held_micro + s.spent_micro
    assert ledger.verify() == []
    return s


def test_hold_charge_refund_user_and_group(ledger):
    ledger.set_budget("user:alice", 50 * D)
    ledger.set_budget("group:lab", 100 * D)
    h = ledger.hold(["user:alice", "group:lab"], 10 * D, "jobs", "job-1", "2 nodes", now=NOW)
    for acct in ("user:alice", "group:lab", "hub"):
        assert check_invariant(ledger, acct).held_micro == 10 * D
    out = ledger.charge(h, 7 * D, now=NOW)
    assert out == {"hold_id": h, "charged_micro": 7 * D, "refunded_micro": 3 * D}
    s = check_invariant(ledger, "user:alice")
    assert (s.held_micro, s.spent_micro, s.available_micro) == (0, 7 * D, 43 * D)
    assert s.by_category["jobs"] == 7 * D
    assert check_invariant(ledger, "hub").spent_micro == 7 * D  # counted once hub-wide
    assert ledger.get_hold(h)["status"] == "charged"
    with pytest.raises(HoldError, match="already charged"):
        ledger.charge(h, 1, now=NOW)
    with pytest.raises(HoldError, match="no hold 999"):
        ledger.release(999)


def test_refusal_names_account_estimate_and_remaining(ledger):
    ledger.set_budget("user:bob", 5 * D)
    ledger.set_budget("group:class", 1000 * D)
    ledger.record(["user:bob"], 4_990_000, "servers", "srv", now=NOW)  # $0.01 left
    with pytest.raises(BudgetExceeded) as exc:
        ledger.hold(["user:bob", "group:class"], 1_210_000, "servers", "gpu", now=NOW)
    e = exc.value
    assert (e.account, e.estimate_micro, e.remaining_micro, e.budget_micro) == ("user:bob", 1_210_000, 10_000, 5 * D)
    assert "$1.21" in e.message and "$0.01 of $5.00" in e.message and "2026-05" in e.message
    assert e.as_dict()["error"] == "budget_exceeded"
    # nothing was held for the group either (all or nothing)
    assert check_invariant(ledger, "group:class").held_micro == 0
    ledger.hold(["user:bob", "group:class"], 10_000, "servers", "lab", now=NOW)  # exactly fits
    assert ledger.is_blocked(["user:bob"], now=NOW)
    assert ledger.blocked_accounts(["user:bob", "group:class"], now=NOW) == ["user:bob"]


def test_release_returns_everything(ledger):
    ledger.set_budget("user:c", 3 * D)
    h = ledger.hold("user:c", 3 * D, "dask", "cl-1", now=NOW)
    assert ledger.is_blocked(["user:c"], now=NOW)
    ledger.release(h, now=NOW)
    s = check_invariant(ledger, "user:c")
    assert (s.available_micro, s.held_micro, s.spent_micro) == (3 * D, 0, 0)
    assert ledger.get_hold(h)["status"] == "released"


def test_overrun_is_charged_whole_and_blocks(ledger):
    ledger.set_budget("user:d", 10 * D)
    h = ledger.hold("user:d", 4 * D, "jobs", "j", now=NOW)
    ledger.charge(h, 12 * D, now=NOW)
    s = check_invariant(ledger, "user:d")
    assert s.spent_micro == 12 * D and s.available_micro == -2 * D and s.blocked


def test_unbudgeted_accounts_are_unlimited_but_recorded(ledger):
    h = ledger.hold(["user:free", "group:nobudget"], 10**12, "jobs", "big", now=NOW)
    ledger.charge(h, 5 * D, now=NOW)
    s = ledger.summary("user:free", NOW)
    assert s.budget_micro is None and s.available_micro is None and not s.blocked
    assert s.spent_micro == 5 * D
    assert set(ledger.accounts()) >= {"user:free", "group:nobudget", "hub"}


def test_admin_override_allows_spend_past_100_and_expires(ledger):
    ledger.set_budget("group:lab", 1 * D)
    ledger.record(["group:lab"], 1 * D, "storage", "arch", now=NOW)
    assert ledger.is_blocked(["user:e", "group:lab"], now=NOW)
    with pytest.raises(BudgetExceeded):
        ledger.hold(["user:e", "group:lab"], 1, "jobs", "j", now=NOW)
    b = ledger.override("group:lab", by="admin", until=NOW + timedelta(days=1), reason="deadline", now=NOW)
    assert b.override_by == "admin"
    assert not ledger.is_blocked(["group:lab"], now=NOW)
    h = ledger.hold(["user:e", "group:lab"], 5 * D, "jobs", "j", now=NOW)
    ledger.charge(h, 5 * D, now=NOW)
    s = check_invariant(ledger, "group:lab")
    assert s.spent_micro == 6 * D and s.overridden
    later = NOW + timedelta(days=2)
    assert ledger.is_blocked(["group:lab"], now=later)  # override expired
    ledger.override("group:lab", by="admin", now=NOW)  # default: to the end of the period
    assert ledger.get_budget("group:lab").override_until == datetime(2026, 6, 1, tzinfo=UTC)
    ledger.clear_override("group:lab")
    assert ledger.is_blocked(["group:lab"], now=NOW)
    with pytest.raises(ValueError, match="no budget"):
        ledger.override("user:nobody", by="admin")


def test_monthly_period_rolls_over(ledger):
    ledger.set_budget("user:f", 2 * D)
    ledger.record("user:f", 2 * D, "servers", "s", now=NOW)
    assert ledger.is_blocked(["user:f"], now=NOW)
    june = datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC)
    s = ledger.summary("user:f", june)
    assert s.period.key == "2026-06" and s.spent_micro == 0 and not s.blocked
    # a hold placed in May and charged in June stays in May's books
    ledger.set_budget("user:g", 10 * D)
    h = ledger.hold("user:g", 3 * D, "jobs", "j", now=NOW)
    ledger.charge(h, 2 * D, now=june)
    assert ledger.summary("user:g", NOW).spent_micro == 2 * D
    assert ledger.summary("user:g", june).spent_micro == 0
    assert ledger.verify() == []


def test_window_budget_for_a_class(ledger):
    start, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 20, tzinfo=UTC)
    ledger.set_budget("group:ess101", 300 * D, period="window", start=start, end=end)
    inside = datetime(2026, 10, 1, tzinfo=UTC)
    h = ledger.hold(["user:stu", "group:ess101"], 100 * D, "servers", "s", now=inside)
    ledger.charge(h, 100 * D, now=inside)
    nov = datetime(2026, 11, 15, tzinfo=UTC)
    s = check_invariant(ledger, "group:ess101", nov)  # same window across months
    assert s.spent_micro == 100 * D and s.available_micro == 200 * D
    with pytest.raises(BudgetExceeded, match="window is not open"):
        ledger.hold(["user:stu", "group:ess101"], 1, "jobs", "late", now=end + timedelta(seconds=1))
    with pytest.raises(BudgetExceeded):
        ledger.hold(["group:ess101"], 1, "jobs", "early", now=start - timedelta(days=1))


@pytest.mark.parametrize("kwargs, match", [
    ({"account": "alice", "amount_micro": 1}, "account: 'alice'"),
    ({"account": "user:a b", "amount_micro": 1}, "account"),
    ({"account": "user:a", "amount_micro": -1}, "amount_micro"),
    ({"account": "user:a", "amount_micro": 1.5}, "amount_micro"),
    ({"account": "user:a", "amount_micro": 1, "period": "weekly"}, "period: 'weekly'; allowed: monthly, window"),
    ({"account": "user:a", "amount_micro": 1, "period": "window"}, "needs both"),
    ({"account": "user:a", "amount_micro": 1, "thresholds": (0,)}, "thresholds"),
])
def test_bad_budget_input_names_the_field(ledger, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ledger.set_budget(**kwargs)


def test_bad_money_input_names_the_field(ledger):
    with pytest.raises(ValueError, match="category: 'gpu'; allowed: servers, dask, jobs, storage"):
        ledger.hold("user:a", 1, "gpu", "x")
    with pytest.raises(TypeError, match="amount_micro"):
        ledger.hold("user:a", 0.5, "jobs", "x")
    with pytest.raises(ValueError, match="actual_micro"):
        ledger.charge(ledger.hold("user:a", 1, "jobs", "x"), -1)


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_thresholds_notify_once_each_via_log_webhook_and_callback(engine, webhook, caplog):
    url, received = webhook
    seen = []
    ledger = Ledger(engine, notifiers=[WebhookNotifier(url), CallbackNotifier(seen.append)])
    ledger.set_budget("user:h", 10 * D)
    caplog.set_level(logging.INFO, logger="lens.costs")
    ledger.record("user:h", 4 * D, "servers", "s", now=NOW)
    assert seen == []
    h = ledger.hold("user:h", 2 * D, "jobs", "j", now=NOW)
    assert seen == []  # a hold is not spend
    ledger.charge(h, 2 * D, now=NOW)  # 60 %
    assert [e.threshold for e in seen] == [50]
    ledger.record("user:h", 3 * D, "dask", "d", now=NOW)  # 90 %
    ledger.record("user:h", 1 * D, "dask", "d", now=NOW)  # 100 %
    ledger.record("user:h", 1 * D, "dask", "d", now=NOW)  # 110 %: nothing new
    assert [e.threshold for e in seen] == [50, 80, 100]
    assert seen[-1].blocked and "blocked" in seen[-1].message
    assert [r["event"]["threshold"] for r in received] == [50, 80, 100]
    assert received[0]["text"].startswith("user:h has used 50%")
    logged = [r.getMessage() for r in caplog.records if "budget threshold" in r.getMessage()]
    assert len(logged) == 3
    # a new month starts fresh; a fresh Ledger on the same DB does not repeat old alerts
    Ledger(engine, notifiers=[CallbackNotifier(seen.append)]).record("user:h", 1, "dask", "d", now=NOW)
    assert len(seen) == 3


def test_broken_webhook_never_blocks_money(engine, caplog):
    ledger = Ledger(engine, notifiers=[WebhookNotifier("http://127.0.0.1:9/nowhere", timeout=0.5)])
    ledger.set_budget("user:i", 1 * D)
    ledger.record("user:i", 1 * D, "jobs", "j", now=NOW)
    assert ledger.summary("user:i", NOW).spent_micro == 1 * D
    assert any("webhook" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="url"):
        WebhookNotifier("file:///etc/passwd")
