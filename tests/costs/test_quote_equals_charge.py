"""What a user is quoted is what the ledger charges, for every category, from one catalog.

Each test takes the quote from the code path the user sees (the spawn form, the Dask
widget, an archive dry run, a restore plan), charges the same usage through the
real meter into the real Ledger on SQLite, and checks both against a figure computed
here from prices.json's own numbers. (Jobs: tests/atom/test_prices.py.)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from jupyter_ext.archive.engine import ArchiveEngine
from jupyter_ext.archive.repository import Principal
from jupyter_ext.constants import DEFAULT_PACK_SIZE
from jupyter_ext.costs.catalog import packaged_snapshot, process_catalog
from jupyter_ext.costs.usage import UsageMeter, server_ref
from jupyter_ext.gateway.backend import make_record
from jupyter_ext.gateway.metering import Rates, live_costs
from jupyter_ext.gateway.settings import GIB, GatewaySettings
from jupyter_ext.kernel import dask_widget
from jupyter_ext.service import dask_charging
from jupyter_ext.service.archive_routes import start_storage_metering, stored_objects
from spawners.form import render_form
from spawners.pricing import hourly_rate
from spawners.profiles import load_catalog as load_profiles

PRICES = packaged_snapshot()["regions"]["us-east-1"]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ALICE = Principal("alice", ())


def micro(usd: Decimal) -> int:
    return int((usd * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def spent(ledger, account: str, category: str, now: datetime | None = None) -> int:
    return ledger.summary(account, now=now).by_category.get(category, 0)


def dollars(text: str) -> Decimal:
    return Decimal(text.replace("$", "").replace(",", ""))


@pytest.fixture
def profiles():
    return load_profiles(Path(__file__).resolve().parents[2] / "hub_config" / "profiles.yaml")


@pytest.mark.parametrize("slug", ["lab", "gpu"])
def test_spawn_form_rate_is_what_a_running_server_is_charged(ledger, profiles, slug):
    profile = profiles.get(slug)
    listed = micro(Decimal(PRICES["ec2"][profile.instance_type]["ondemand_hour"]))
    # the quote: the $/h on the profile's card of the spawn form
    html = render_form(profiles, groups=["gpu-users"], admin=False,
                       rates={p.slug: hourly_rate(p) for p in profiles.profiles}, unavailable={})
    card = re.search(rf'data-profile="{slug}".*?class="lens-rate"[^>]*>([^<]+)</span>', html, re.S)
    assert card, html
    quoted = micro(dollars(card.group(1).removesuffix("/h")))
    # the charge: the rate the spawner meters (its start event) over one hour, in the ledger
    meter = UsageMeter(ledger)
    ref = server_ref("alice", slug)
    meter.start(ref, "servers", ["user:alice"], str(hourly_rate(profile)), at=T0)
    total = meter.stop(ref, at=T0 + HOUR)
    assert quoted == listed == total == spent(ledger, "user:alice", "servers", T0 + HOUR)


def test_dask_widget_rate_is_what_the_cluster_is_charged(ledger):
    dask_charging.ensure_tables(ledger.engine)
    rates = Rates.from_settings(GatewaySettings())  # what the gateway prices clusters with
    t0 = int(T0.timestamp() * 1000)
    config = {"worker_cores": 2, "worker_memory": 3 * GIB}
    record = make_record(name="c1", username="alice", status="RUNNING", start_time=t0,
                         stop_time=None, config=config, rates=rates,
                         workers=[{"name": "w1", "status": "RUNNING", "start_time": t0,
                                   "stop_time": None}])
    listed = micro(2 * Decimal(PRICES["dask"]["core_hour"]) + 3 * Decimal(PRICES["dask"]["gib_hour"]))
    # the quote: the Cost row of the cluster widget (from the gateway's costs route)
    [cost] = live_costs({"now": t0, "clusters": [record]}, rates)
    text = dask_widget.cost_text(cost)
    quoted = micro(dollars(text.split("/h")[0]))
    # the charge: the service charges the gateway's usage snapshot into the ledger
    accounts = {"alice": ["user:alice"]}
    dask_charging.charge(ledger, {"now": t0, "clusters": [record]}, rates, accounts)  # watermark
    one_hour = t0 + 3_600_000
    dask_charging.charge(ledger, {"now": one_hour, "clusters": [record]}, rates, accounts)
    assert quoted == listed == spent(ledger, "user:alice", "dask")


def _tree(root: Path) -> Path:
    import random

    rng = random.Random(7)
    root.mkdir()
    for i in range(6):
        (root / f"f{i}.bin").write_bytes(rng.randbytes(150_000))
    return root


def _glacier_month(nbytes: int, objects: int) -> int:
    """A month (730 h) of GLACIER for ``objects`` objects, from prices.json's numbers:
    the data plus 32 KB per object at the GLACIER rate, 8 KB per object at STANDARD."""
    s3 = PRICES["s3"]
    per_month = (Decimal(s3["GLACIER"]["gb_month"]) * (nbytes + objects * 32 * 1024)
                 + Decimal(s3["STANDARD"]["gb_month"]) * objects * 8 * 1024) / 2**30
    return micro(per_month)


def test_archive_dry_run_quote_is_what_storage_is_charged(ledger, tmp_path):
    src = _tree(tmp_path / "src")
    pack_size = 128 * 1024  # configured, not the default: several packs
    eng = ArchiveEngine(repository=str(tmp_path / "repo"), pack_size=pack_size, zstd_level=0,
                        cache_dir="", prices=process_catalog())
    # the quote: %archive --dry-run's cost table, GLACIER row
    dry = eng.create([str(src)], owner="alice", principal=ALICE, name="a", dry_run=True,
                     storage_class="GLACIER")
    quote = next(r for r in dry["costs"] if r["storage_class"] == "GLACIER")
    # the archive itself, registered as the server registers it, metered for a month
    done = eng.create([str(src)], owner="alice", principal=ALICE, name="a",
                      storage_class="GLACIER")
    entry = done["archive"]
    assert entry["packs"] == quote["objects"] > 1 and entry["added_bytes"] == quote["stored_bytes"]
    body = {"archive_id": entry["id"], "name": "a", "storage_class": "GLACIER",
            "added_bytes": entry["added_bytes"], "objects": entry["packs"], "pack_size": pack_size}
    meter = UsageMeter(ledger)
    start_storage_metering(meter, process_catalog(), "alice", ["user:alice"], body)
    later = datetime.now(UTC) + timedelta(hours=730)
    month = meter.accrue(later)
    listed = _glacier_month(entry["added_bytes"], entry["packs"])
    assert quote["monthly_micro"] == listed == month == spent(ledger, "user:alice", "storage", later)


def test_metered_objects_follow_the_configured_pack_size():
    added = 10 * 2**20
    assert stored_objects({"added_bytes": added, "pack_size": 2**20}) == 10
    assert stored_objects({"added_bytes": added}) == -(-added // DEFAULT_PACK_SIZE) == 1
    assert stored_objects({"added_bytes": added, "objects": 12, "pack_size": 2**20}) == 12


def test_restore_plan_quotes_the_catalogs_retrieval_prices(tmp_path):
    """Restores are not charged by lens (AWS bills the thaw); the plan quotes prices.json."""
    src = _tree(tmp_path / "src")
    eng = ArchiveEngine(repository=str(tmp_path / "repo"), pack_size=128 * 1024, zstd_level=0,
                        cache_dir="", prices=process_catalog())
    eng.create([str(src)], owner="alice", principal=ALICE, name="a", storage_class="GLACIER")
    plan = eng.plan("a", owner="alice", principal=ALICE)
    sizes = [p["size"] for p in plan.packs.values()]
    restore = PRICES["s3"]["GLACIER"]["restore"]
    by_tier = {e.tier: e for e in plan.estimates}
    for tier, name in (("bulk", "Bulk"), ("standard", "Standard"), ("expedited", "Expedited")):
        listed = micro(Decimal(restore[name]["gb"]) * sum(sizes) / 2**30
                       + Decimal(restore[name]["per_1000"]) * len(sizes) / 1000)
        assert by_tier[tier].cost == listed, tier
        assert list(by_tier[tier].hours) == restore[name]["hours"]
