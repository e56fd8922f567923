from __future__ import annotations

import pytest
from traitlets.config import Config

from jupyter_ext.costs.config import CostsSettings
from jupyter_ext.costs.gate import accounts_for, remaining, spawn_gate
from jupyter_ext.costs.ledger import BudgetExceeded

D = 1_000_000


def test_user_with_a_cent_left_cannot_start_gpu_but_can_start_lab(ledger, catalog):
    accts = accounts_for("alice", ["lab"])
    assert accts == ["user:alice", "group:lab"]
    ledger.set_budget("user:alice", 5 * D)
    ledger.record(accts, 4_990_000, "servers", "earlier")
    assert remaining(ledger, accts) == 10_000
    gpu = catalog.hourly("g5.xlarge")
    with pytest.raises(BudgetExceeded) as exc:
        spawn_gate(ledger, accts, gpu, catalog=catalog)
    assert "$1.01" in str(exc.value) and "$0.01 of $5.00" in str(exc.value)
    tiny = catalog.hourly("t3.micro") / 2  # $0.0052/h fits in a cent
    est = spawn_gate(ledger, accts, tiny, catalog=catalog)
    assert est.amount_micro == 5_200 and est.snapshot["date"] == catalog.info.date
    assert est.detail["remaining_micro"] == 10_000


def test_settings_build_ledger_and_catalog(tmp_path):
    cfg = Config()
    cfg.CostsSettings.db_url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    cfg.CostsSettings.region = "eu-west-1"
    cfg.CostsSettings.webhook_url = "http://127.0.0.1:9/hook"
    s = CostsSettings(config=cfg)
    ledger = s.make_ledger()
    assert len(ledger.notifiers) == 2  # log + webhook
    assert s.load_catalog().default_region == "eu-west-1"
    assert s.load_catalog().hourly("t3.micro") > 0
    with pytest.raises(ValueError, match="account"):
        accounts_for("bad name")


def test_concurrent_spawns_with_start_hold_accept_exactly_what_fits(ledger):
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime, timedelta

    from jupyter_ext.costs.gate import spawn_hold
    from jupyter_ext.costs.usage import UsageMeter

    t0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)
    ledger.set_budget("group:class", 10 * 1_006_000)  # ten g5.xlarge hours
    meter = UsageMeter(ledger)
    barrier = threading.Barrier(30)

    def spawn(i):
        accts = accounts_for(f"s{i}", ["class"])
        barrier.wait()
        try:
            hold_id, _ = spawn_hold(ledger, accts, "1.006", f"server:s{i}/", now=t0)
        except BudgetExceeded:
            return None
        meter.start(f"server:s{i}/", "servers", accts, "1.006", at=t0, hold_id=hold_id)
        return i

    with ThreadPoolExecutor(30) as pool:
        started = [i for i in pool.map(spawn, range(30)) if i is not None]
    assert len(started) == 10
    s = ledger.summary("group:class", t0)
    assert (s.held_micro, s.spent_micro, s.available_micro) == (10 * 1_006_000, 0, 0)
    # metering takes over at the first booking: the holds are released, usage is spent
    meter.accrue(t0 + timedelta(minutes=30))
    s = ledger.summary("group:class", t0)
    assert s.held_micro == 0 and s.spent_micro == 10 * 503_000
    # a restarted hub re-reporting a running server with a fresh hold does not leak it
    ref = f"server:s{started[0]}/"
    h = ledger.hold([f"user:s{started[0]}"], 1, "servers", ref, now=t0)
    meter.start(ref, "servers", [f"user:s{started[0]}"], "1.006", at=t0, hold_id=h)
    assert ledger.get_hold(h)["status"] == "released"
    assert ledger.verify() == []
