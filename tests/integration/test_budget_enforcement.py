"""The lens service keeps the meter honest against the hub:

- `CostsSettings.stop_servers_at_limit`: a running server whose budget is used up
  is stopped; a server with budget left keeps running;
- the reconciliation closes the interval of a server whose stop event was lost
  and releases a start hold whose start never finished, and leaves running
  servers alone.

Its own stack: the service accrues every 2 s and has the setting on
(through LENS_SERVICE_CONFIG), which the shared stack must not have.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.hub import make_stack

pytestmark = pytest.mark.integration
D = 1_000_000


@pytest.fixture(scope="module")
def strict_stack():
    root = Path(tempfile.mkdtemp(prefix="lens-strict-"))
    root.chmod(0o711)
    config = root / "lens_service_config.py"
    config.write_text("c.CostsSettings.accrue_interval = 2\n"
                      "c.CostsSettings.stop_servers_at_limit = True\n"
                      "c.CostsSettings.reconcile_interval = 2\n"
                      "c.CostsSettings.orphan_hold_seconds = 60\n")
    hub = make_stack(root / "state", {"LENS_SERVICE_CONFIG": str(config)})
    hub.start()
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_server_over_budget_is_stopped_and_the_other_keeps_running(strict_stack):
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    stack = strict_stack
    for name in ("over", "within"):
        stack.create_user(name)
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        ledger = Ledger(engine)
        for name in ("over", "within"):
            ledger.set_budget(f"user:{name}", 1 * D)
            assert stack.spawn(name, "lab").status_code in (201, 202)
        ledger.record(["user:over"], 2 * D, "jobs", "a-big-job")  # now past 100 %
        assert ledger.summary("user:over").blocked
    finally:
        engine.dispose()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and stack.api("GET", "/users/over").json().get("servers"):
        time.sleep(0.5)
    assert not stack.api("GET", "/users/over").json().get("servers"), "over-budget server still running"
    assert stack.api("GET", "/users/within").json()["servers"][""]["ready"]
    assert "budget: stopping over's server" in (stack.state / "stack.log").read_text()
    stack.stop_server("within")


def test_reconciliation_closes_lost_servers_and_releases_orphan_holds(strict_stack):
    from datetime import UTC, datetime, timedelta

    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger
    from jupyter_ext.costs.usage import UsageMeter

    stack = strict_stack
    for name in ("ghost", "alive"):
        stack.create_user(name)
    assert stack.spawn("alive", "lab").status_code in (201, 202)
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        ledger = Ledger(engine)
        meter = UsageMeter(ledger)
        ledger.set_budget("user:ghost", 5 * D)
        # what a lost stop event and a hub that died mid-start leave behind
        meter.start("server:ghost/", "servers", ["user:ghost"], "0.096")
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        orphan = ledger.hold(["user:ghost"], 96_000, "servers", "server:ghost/named", now=an_hour_ago)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            gone = not any(r["ref"] == "server:ghost/" for r in meter.open_intervals("servers"))
            if gone and ledger.get_hold(orphan)["status"] == "released":
                break
            time.sleep(1)
        assert not any(r["ref"] == "server:ghost/" for r in meter.open_intervals("servers"))
        assert ledger.get_hold(orphan)["status"] == "released"
        assert ledger.summary("user:ghost").held_micro == 0
        # the running server's interval is untouched
        assert any(r["ref"] == "server:alive/" for r in meter.open_intervals("servers"))
        assert ledger.verify() == []
    finally:
        engine.dispose()
    stack.stop_server("alive")
