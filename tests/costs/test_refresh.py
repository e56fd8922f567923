"""`lens prices refresh`: Pricing API through botocore's Stubber on recorded responses
(moto has no Pricing API), spot price history against moto's EC2."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from jupyter_ext.cli import prices as prices_cmd
from jupyter_ext.cli.main import main
from jupyter_ext.costs.catalog import PriceCatalog, packaged_snapshot
from jupyter_ext.costs.meter import server_estimate
from jupyter_ext.costs.refresh import parse_ec2, refresh_snapshot

RECORDED = json.loads((Path(__file__).parent / "data" / "pricing_get_products_us-east-1.json").read_text())
TYPES = ["g6.xlarge", "m7i.large", "t3.micro"]


def stubbed_pricing(region="us-east-1", types=TYPES):
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://api.pricing.us-east-1.amazonaws.com")
    stub = Stubber(client)
    ec2_filters = [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
        {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
        {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
        {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"},
        {"Type": "TERM_MATCH", "Field": "licenseModel", "Value": "No License required"},
        {"Type": "ANY_OF", "Field": "instanceType", "Value": ",".join(types)},
    ]
    base = {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100}
    stub.add_response("get_products", RECORDED["ec2_page1"], {**base, "Filters": ec2_filters})
    stub.add_response("get_products", RECORDED["ec2_page2"],
                      {**base, "Filters": ec2_filters, "NextToken": "page-2-token"})
    stub.add_response("get_products", RECORDED["ebs_gp3"], {**base, "Filters": [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "volumeApiName", "Value": "gp3"}]})
    stub.add_response("get_products", RECORDED["s3_storage"], {
        "ServiceCode": "AmazonS3", "FormatVersion": "aws_v1", "MaxResults": 100, "Filters": ANY})
    return client, stub


def test_parse_ec2_takes_ondemand_not_reserved():
    products = [json.loads(p) for p in RECORDED["ec2_page1"]["PriceList"]]
    got = parse_ec2(products)
    assert got["t3.micro"] == {"ondemand_hour": "0.0104", "vcpu": 2, "memory_gib": 1, "gpus": 0}
    assert got["m7i.large"]["ondemand_hour"] == "0.1008"  # not the 1-yr reserved 0.0065


def test_parse_ec2_reads_arch_and_cpu_vendor_for_atom():
    product = json.loads(RECORDED["ec2_page1"]["PriceList"][0])
    attrs = product["product"]["attributes"]
    for processor, vendor, arch in (("AMD EPYC 7R13 Processor", "amd", "x86_64"),
                                    ("Intel Xeon Platinum 8488C", "intel", "x86_64"),
                                    ("AWS Graviton3 Processor", "aws", "arm64")):
        attrs["physicalProcessor"] = processor
        [entry] = parse_ec2([product]).values()
        assert (entry["cpu_vendor"], entry["arch"]) == (vendor, arch)


def test_refresh_with_stubbed_pricing_and_moto_spot(aws_env):
    pricing, stub = stubbed_pricing()
    base = packaged_snapshot()
    base["regions"]["us-east-1"]["ec2"]["m7i.large"]["ondemand_hour"] = "9.99"  # stale, to be replaced
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with stub:
        snap = refresh_snapshot(base, pricing, lambda r: boto3.client("ec2", region_name=r),
                                regions=["us-east-1"], instance_types=TYPES, now=now)
        stub.assert_no_pending_responses()
    reg = snap["regions"]["us-east-1"]
    assert reg["ec2"]["m7i.large"]["ondemand_hour"] == "0.1008"
    assert reg["ec2"]["g6.xlarge"]["gpus"] == 1
    assert reg["ebs"]["gp3"] == {**base["regions"]["us-east-1"]["ebs"]["gp3"], "gb_month": "0.08",
                                 "iops_month": "0.005", "throughput_mibps_month": "0.04"}
    assert reg["s3"]["GLACIER"]["gb_month"] == "0.0036"
    assert reg["s3"]["STANDARD"]["gb_month"] == "0.023"  # first tier, not 0.021
    assert "restore" in reg["s3"]["GLACIER"]  # carried from the old snapshot
    # spot history came from moto's EC2 (its values are fixed fakes, but real wire calls)
    assert set(reg["spot"]) <= set(TYPES) and reg["spot"]
    for entry in reg["spot"].values():
        assert entry["price_hour"] == min(entry["by_az"].values(), key=float)
    assert snap["date"] == "2026-11-24"
    assert "Pricing API" in snap["source"] and snap["previous"]["date"] == base["date"]
    assert snap["refreshed"]["us-east-1"]["ec2"] == 3
    # every estimate names the snapshot it used
    est = server_estimate(PriceCatalog(snap, "refreshed"), "m7i.large", hours="2")
    assert est.amount_micro == 201_600
    assert est.snapshot["date"] == "2026-11-24" and "Pricing API" in est.snapshot_label


def test_cli_refresh_writes_snapshot_that_becomes_current(aws_env, monkeypatch, tmp_path, capsys):
    pricing, stub = stubbed_pricing()
    monkeypatch.setattr(prices_cmd, "make_pricing_client", lambda: pricing)
    out = tmp_path / "state" / "prices.json"
    with stub:
        rc = main(["prices", "refresh", "--regions", "us-east-1", "--types", ",".join(TYPES)])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    cat = PriceCatalog.load()
    assert cat.info.origin == str(out)
    assert "Pricing API" in cat.info.source


def test_cli_refresh_reports_aws_failure(monkeypatch, capsys):
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_client_error("get_products", "AccessDeniedException", "not allowed")
    monkeypatch.setattr(prices_cmd, "make_pricing_client", lambda: client)
    with stub:
        rc = main(["prices", "refresh", "--no-spot", "--regions", "us-east-1", "--types", "t3.micro"])
    assert rc == 2
    assert "AccessDeniedException" in capsys.readouterr().err


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_cli_prices_show(region, capsys):
    assert main(["prices", "show", "--region", region, "--family", "c8g"]) == 0
    out = capsys.readouterr().out
    assert "c8g.large" in out and "GLACIER" in out and "price snapshot" in out


def test_refresh_adds_a_new_region_without_borrowing_its_ec2_prices():
    pricing, stub = stubbed_pricing(region="eu-central-1")
    base = packaged_snapshot()
    with stub:
        snap = refresh_snapshot(base, pricing, None, regions=["eu-central-1"], instance_types=TYPES,
                                now=datetime(2026, 11, 24, tzinfo=UTC))
    reg = snap["regions"]["eu-central-1"]
    assert sorted(reg["ec2"]) == TYPES  # only what the API returned (recorded us-east-1 pages)
    assert reg["spot"] == {}
    assert PriceCatalog(snap).hourly("t3.micro", "eu-central-1") > 0
    assert "us-east-1" in snap["regions"] and "eu-west-1" in snap["regions"]  # others kept


def test_refresh_changes_what_is_quoted_and_what_is_charged(monkeypatch, tmp_path, ledger):
    """The operator's state holds a snapshot with stale prices (an m7i.large server and
    GLACIER storage); `lens prices refresh` (Pricing API through the Stubber) replaces it,
    and the next process (the service, the spawner, a user server) quotes and charges the
    new prices: the same file for everyone."""
    from datetime import timedelta

    from jupyter_ext.archive.engine import ArchiveEngine
    from jupyter_ext.archive.repository import Principal
    from jupyter_ext.costs.catalog import default_snapshot_path, resolved_snapshot_path
    from jupyter_ext.costs.usage import UsageMeter
    from jupyter_ext.service.archive_routes import start_storage_metering
    from spawners.form import render_form
    from spawners.pricing import hourly_rate
    from spawners.profiles import parse_catalog

    stale = packaged_snapshot()
    region = stale["regions"]["us-east-1"]
    region["ec2"]["m7i.large"]["ondemand_hour"] = "0.5"
    region["s3"]["GLACIER"]["gb_month"] = "0.05"
    state_file = default_snapshot_path()
    state_file.parent.mkdir(parents=True)
    state_file.write_text(json.dumps(stale))
    profiles = parse_catalog({"profiles": [{
        "slug": "lab", "display_name": "Lab", "description": "d", "interface": "lab", "image": "lens/notebook",
        "cpu": {"limit": 2}, "memory": {"limit": "8G"}, "instance_type": "m7i.large"}]})
    src = tmp_path / "src"
    src.mkdir()
    (src / "data.bin").write_bytes(random.Random(3).randbytes(8 * 2**20))
    now = datetime.now(UTC)

    def quote_and_charge(run: str) -> tuple[str, int, int, int]:
        catalog = PriceCatalog.load()  # what a (re)started process loads: the resolved file
        assert resolved_snapshot_path() == state_file and catalog.info.origin == str(state_file)
        profile = profiles.get("lab")
        lookup = lambda t: float(catalog.hourly(t))  # noqa: E731
        form = render_form(profiles, groups=[], admin=False, unavailable={},
                           rates={"lab": hourly_rate(profile, lookup)})
        meter = UsageMeter(ledger)
        meter.start(f"server:alice/{run}", "servers", ["user:alice"], str(hourly_rate(profile, lookup)),
                    at=now)
        server_hour = meter.stop(f"server:alice/{run}", at=now + timedelta(hours=1))
        eng = ArchiveEngine(repository=str(tmp_path / f"repo-{run}"), cache_dir="", prices=catalog)
        principal = Principal("alice", ())
        dry = eng.create([str(src)], owner="alice", principal=principal, name="a", dry_run=True,
                         storage_class="GLACIER")
        quote = next(r for r in dry["costs"] if r["storage_class"] == "GLACIER")["monthly_micro"]
        entry = eng.create([str(src)], owner="alice", principal=principal, name="a",
                           storage_class="GLACIER")["archive"]
        start_storage_metering(meter, catalog, "alice", ["user:alice"], {
            "archive_id": f"{run}-{entry['id']}", "name": "a", "storage_class": "GLACIER",
            "added_bytes": entry["added_bytes"], "objects": entry["packs"]})
        month = meter.accrue(datetime.now(UTC) + timedelta(hours=730))
        assert month == quote
        s3 = json.loads(state_file.read_text())["regions"]["us-east-1"]["s3"]
        n = entry["packs"]
        listed = (Decimal(s3["GLACIER"]["gb_month"]) * (entry["added_bytes"] + n * 32 * 1024)
                  + Decimal(s3["STANDARD"]["gb_month"]) * n * 8 * 1024) / 2**30
        assert quote == int((listed * 1_000_000).to_integral_value(rounding="ROUND_HALF_UP"))
        return form, server_hour, quote, month

    form0, server0, quote0, month0 = quote_and_charge("before")
    assert "$0.500/h" in form0 and server0 == 500_000

    pricing, stub = stubbed_pricing()
    monkeypatch.setattr(prices_cmd, "make_pricing_client", lambda: pricing)
    with stub:
        assert main(["prices", "refresh", "--no-spot", "--regions", "us-east-1",
                     "--types", ",".join(TYPES)]) == 0
        stub.assert_no_pending_responses()
    refreshed = json.loads(state_file.read_text())["regions"]["us-east-1"]
    new_rate = refreshed["ec2"]["m7i.large"]["ondemand_hour"]
    assert new_rate != "0.5" and refreshed["s3"]["GLACIER"]["gb_month"] != "0.05"

    form1, server1, quote1, month1 = quote_and_charge("after")
    assert f"${new_rate}/h" in form1 and server1 == int(Decimal(new_rate) * 1_000_000)
    assert quote1 == month1 < quote0 == month0
