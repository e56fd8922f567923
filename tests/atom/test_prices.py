"""`%atom estimate` quotes what a job is charged: both come from the costs price catalog.

The estimate is the JobManager's (what ``POST api/jobs/estimate`` and the magic show);
the charge is what the real costs Ledger on SQLite books when the job ends; the
expected rate is read here from prices.json.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.costs.catalog import packaged_snapshot, process_catalog
from jupyter_ext.costs.db import make_engine
from jupyter_ext.costs.ledger import Ledger
from tests.atom.helpers import settle

PRICES = packaged_snapshot()["regions"]["us-east-1"]


def micro(usd: str) -> int:
    return int((Decimal(usd) * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cheapest(families, vcpus: int, gib: int, spot: bool) -> tuple[str, int]:
    """The cheapest fitting type of ``families`` and its rate, read from prices.json."""
    fits = []
    for name, e in PRICES["ec2"].items():
        if name.split(".")[0] in families and e["vcpu"] >= vcpus and e["memory_gib"] >= gib:
            price = PRICES["spot"][name]["price_hour"] if spot else e["ondemand_hour"]
            fits.append((micro(price), e["vcpu"], name))
    rate, _, name = min(fits)
    return name, rate


async def test_atom_estimate_is_what_the_job_is_charged(shared_dir, catalog, unix_users, tmp_path):
    ledger = Ledger(make_engine(f"sqlite:///{tmp_path}/ledger.sqlite"))
    manager = JobManager(ledger.engine, {"local": LocalBackend(state_dir=shared_dir + "/p")},
                         ledger, catalog=catalog, prices=process_catalog())
    for spot in (False, True):
        spec = {"name": f"q{int(spot)}", "command": ["sleep", "0.3"], "vcpus": 3, "memory": "5G",
                "arch": "x86_64-amd", "walltime": "00:10:00", "spot": spot}
        est = manager.estimate(spec)  # the quote
        name, rate = cheapest(("c6a", "m6a", "r6a"), 3, 5, spot)
        assert (est["instance_type"], est["hourly_rate_micro"]) == (name, rate)
        assert est["est_cost_micro"] == -(-600 * rate // 3600)
        assert est["snapshot"]["date"] == packaged_snapshot()["date"]
        before = ledger.summary("user:atomalice").by_category.get("jobs", 0)
        rec = await manager.submit("atomalice", [], spec)
        [done] = await settle(manager, "atomalice", [rec["id"]])
        charged = ledger.summary("user:atomalice").by_category.get("jobs", 0) - before
        runtime_ms = int(round(done["runtime_s"] * 1000))
        assert runtime_ms > 0
        assert charged == done["cost_micro"] == -(-runtime_ms * rate // 3_600_000)
