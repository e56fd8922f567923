"""`CostsSettings.stop_servers_at_limit`: a running server whose budget is used up is
stopped by the lens service; a server with budget left keeps running.

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
    config.write_text("c.CostsSettings.accrue_interval = 2\nc.CostsSettings.stop_servers_at_limit = True\n")
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
