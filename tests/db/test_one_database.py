"""Every lens process finds the same database: a budget set with the CLI, with no
LENS_DB_URL, is the one the service's start gate enforces."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_ext.costs.gate import spawn_gate, spawn_hold
from jupyter_ext.costs.ledger import BudgetExceeded
from jupyter_ext.db.engine import default_url
from jupyter_ext.paths import state_dir


def test_cli_and_service_resolve_the_same_url(tmp_path, service_env):
    from jupyter_ext.hub.auth import LensPasswordAuthenticator
    from jupyter_ext.hub.state import StateDir
    from jupyter_ext.hub.workshop_restriction import default_db_url as restriction_url
    from jupyter_ext.service.app import LensService

    url = f"sqlite:///{tmp_path / 'state' / 'lens.sqlite'}"
    assert default_url() == url
    assert LensService().db_url == url
    assert LensPasswordAuthenticator().db_url == url
    assert restriction_url() == url
    assert StateDir(state_dir()).lens_db_url == url


def test_a_budget_set_with_the_cli_is_enforced_by_the_service(tmp_path, service_env):
    from jupyter_ext.service.app import LensService
    from jupyter_ext.service.costs_routes import Costs

    env = {k: v for k, v in os.environ.items() if k not in ("LENS_DB_URL", "LENS_COSTS_DB_URL")}
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = repo  # this checkout, whatever the venv's editable install points at
    subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", "budgets", "set", "user:carol", "1"],
                   env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "state" / "lens.sqlite").exists()
    assert not list(tmp_path.rglob("lens-costs.sqlite"))

    service = LensService()
    service.initialize([])
    costs = Costs(service)  # the service's ledger, as its gate routes use it
    assert costs.ledger.engine is service.engine
    spawn_gate(costs.ledger, ["user:carol"], "0.50")  # half the budget fits
    with pytest.raises(BudgetExceeded, match="user:carol"):
        spawn_gate(costs.ledger, ["user:carol"], "2.00")
    hold_id, _ = spawn_hold(costs.ledger, ["user:carol"], "0.75", "carol/")
    with pytest.raises(BudgetExceeded):
        spawn_hold(costs.ledger, ["user:carol"], "0.75", "carol/other")
    costs.ledger.release(hold_id)
