from __future__ import annotations

import json
from decimal import Decimal

import pytest

from jupyter_ext.costs.catalog import PriceCatalog, PriceNotFound, validate_snapshot
from jupyter_ext.costs.meter import job_estimate, server_estimate

FAMILIES = ["t3", "m6i", "m7i", "c7a", "c7i", "c7g", "c8g", "r7i", "g5", "g6"]
S3_CLASSES = ["STANDARD", "REDUCED_REDUNDANCY", "INTELLIGENT_TIERING", "STANDARD_IA", "ONEZONE_IA",
              "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_snapshot_covers_families_storage_and_s3(catalog, region):
    types = catalog.instance_types(region)
    for fam in FAMILIES:
        assert any(t.startswith(fam + ".") for t in types), fam
        large = [t for t in types if t.startswith(fam + ".")]
        for t in large:
            assert Decimal(catalog.instance(t, region)["ondemand_hour"]) > 0
    assert Decimal(catalog.ebs("gp3", region)["gb_month"]) > 0
    for cls in S3_CLASSES:
        entry = catalog.s3(cls, region)
        for key in ("gb_month", "put_per_1000", "get_per_1000", "retrieval_gb", "min_storage_days"):
            assert key in entry, (cls, key)
    assert catalog.s3("GLACIER", region)["overhead_kb"] == {"class": 32, "STANDARD": 8}
    assert set(catalog.s3("GLACIER", region)["restore"]) == {"Expedited", "Standard", "Bulk"}
    assert set(catalog.s3("DEEP_ARCHIVE", region)["restore"]) == {"Standard", "Bulk"}
    assert catalog.s3("DEEP_ARCHIVE", region)["min_storage_days"] == 180


def test_prices_are_plausible_and_ordered(catalog):
    # bigger sizes cost more; eu-west-1 costs at least as much as us-east-1; GPUs are dear
    h = catalog.hourly
    assert h("m7i.large") < h("m7i.xlarge") < h("m7i.2xlarge")
    assert h("m7i.xlarge") == 2 * h("m7i.large")
    # (the atom job families, e.g. c6a and hpc6a, are priced for us-east-1 only)
    both = set(catalog.instance_types("us-east-1")) & set(catalog.instance_types("eu-west-1"))
    assert len(both) >= 80
    for t in both:
        assert h(t, "eu-west-1") >= h(t, "us-east-1"), t
    assert h("g5.xlarge") > h("m7i.2xlarge")
    assert catalog.s3("DEEP_ARCHIVE")["gb_month"] < catalog.s3("GLACIER")["gb_month"]


def test_snapshot_date_source_and_estimates_name_it(catalog):
    assert catalog.info.date and "AWS" in catalog.info.source and catalog.info.origin == "package"
    est = server_estimate(catalog, "t3.medium", hours="3")
    assert est.amount_micro == 3 * 41_600
    assert est.snapshot["date"] == catalog.info.date
    assert catalog.info.date in est.snapshot_label
    job = job_estimate(catalog, "c7g.xlarge", nodes=4, walltime_seconds=1800)
    assert job.amount_micro == 4 * 145_000 // 2
    assert job.as_dict()["snapshot"]["source"] == catalog.info.source


def test_unknown_things_name_the_field(catalog):
    with pytest.raises(PriceNotFound, match="instance_type: 'p5.48xlarge'"):
        catalog.hourly("p5.48xlarge")
    with pytest.raises(PriceNotFound, match="region: 'mars-1'"):
        catalog.hourly("t3.micro", "mars-1")
    with pytest.raises(PriceNotFound, match="storage_class: 'TAPE'.*GLACIER"):
        catalog.s3("TAPE")
    with pytest.raises(ValueError, match="market"):
        catalog.hourly("t3.micro", market="reserved")


def test_spot_falls_back_to_on_demand_and_uses_snapshot_spot(catalog):
    assert catalog.hourly("t3.micro", market="spot") == catalog.hourly("t3.micro")
    data = json.loads(json.dumps(catalog.data))
    data["regions"]["us-east-1"]["spot"]["t3.micro"] = {"price_hour": "0.0031", "by_az": {}}
    assert PriceCatalog(data).hourly("t3.micro", market="spot") == Decimal("0.0031")


def test_load_prefers_refreshed_file(tmp_path, monkeypatch, catalog):
    data = json.loads(json.dumps(catalog.data))
    data["date"] = "2030-01-01"
    f = tmp_path / "state" / "prices.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps(data))
    assert PriceCatalog.load().info.date == "2030-01-01"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"date": "x", "regions": {}}))
    with pytest.raises(ValueError, match="source"):
        PriceCatalog.load(bad)
    with pytest.raises(ValueError, match="no regions"):
        validate_snapshot({"date": "x", "source": "y", "regions": {}})
