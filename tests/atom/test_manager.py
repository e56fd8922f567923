"""JobManager: the state machine, money and adoption (local backend, real processes)."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest

from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.errors import SpecError
from jupyter_ext.atom.manager import JobManager
from tests.atom.helpers import settle


@pytest.fixture
def manager(shared_dir, engine, ledger, catalog, unix_users):
    return JobManager(engine, {"local": LocalBackend(state_dir=shared_dir + "/l")}, ledger,
                      catalog=catalog)


async def test_actual_cost_is_runtime_x_nodes_x_rate_and_charged_once(manager, ledger):
    rec = await manager.submit("atomalice", ["lab", "other"], {
        "name": "c", "command": ["sleep", "0.5"], "walltime": "01:00:00", "array": 2})
    hold = manager.store.get(rec["id"])["hold_id"]
    accounts, held = ledger.holds[hold]
    assert sorted(accounts) == ["group:lab", "hub", "user:atomalice"]  # the hub-wide books too
    assert held == rec["estimate"]["est_cost_micro"]
    [done] = await settle(manager, "atomalice", [rec["id"]])
    rate = done["estimate"]["hourly_rate_micro"]
    assert done["runtime_s"] >= 1.0  # two members of about 0.5 s each
    # runtime (summed over members, to the ms) x 1 node x the hourly rate, rounded up to a micro-dollar
    expected = math.ceil(Fraction(round(done["runtime_s"] * 1000), 1000) * rate / 3600)
    assert done["cost_micro"] == expected == ledger.charged[hold]
    await manager.refresh()  # terminal jobs are not charged again
    assert len(ledger.charged) == 1 and not ledger.holds
    assert "hold_id" not in done and done["cost_so_far_micro"] == done["cost_micro"]


def test_estimate_is_a_dry_run(manager):
    est = manager.estimate({"name": "e", "app": "gchp", "arch": "x86_64-intel"})
    assert {"instance_type", "hourly_rate_micro", "est_cost_micro", "snapshot"} <= set(est)
    assert est["nodes"] == 2 and est["backend"] == "local"
    assert manager.list("atomalice") == []


async def test_project_must_be_one_of_the_users_groups(manager):
    with pytest.raises(SpecError, match="^project: .*allowed: lab"):
        await manager.submit("atomalice", ["lab"], {"name": "p", "command": ["true"],
                                                    "project": "physics"})


async def test_unknown_backend_names_the_configured_ones(manager):
    with pytest.raises(SpecError, match="allowed: local"):
        await manager.submit("atomalice", [], {"name": "p", "command": ["true"],
                                               "backend": "pbs"})


async def test_half_submitted_jobs_are_marked_lost_on_start(manager, ledger):
    rec = {"id": "j-00000000abcd", "user": "atomalice", "backend": "local", "state": "HELD",
           "created": time.time(), "hold_id": ledger.hold(["user:atomalice"], 5, "jobs", "x")}
    manager.store.put(rec)
    summary = await manager.start()
    assert summary["lost_in_submission"] == 1
    assert manager.store.get(rec["id"])["state"] == "LOST"
    assert rec["hold_id"] in ledger.released and not ledger.holds


def test_settings_build_a_manager_from_config(shared_dir, engine, ledger):
    from traitlets.config import Config

    from jupyter_ext.atom.settings import AtomSettings

    c = Config()
    c.AtomSettings.backends = ["local"]
    c.LocalBackend.state_dir = shared_dir + "/cfg"
    c.LocalBackend.max_concurrency = 3
    manager = AtomSettings(config=c).build_manager(engine, ledger)
    assert manager.default_backend == "local"
    assert manager.backends["local"].max_concurrency == 3
    assert "wrf" in [a["name"] for a in manager.apps()]
