"""Refresh the price snapshot from the AWS Pricing API and spot price history.

``refresh_snapshot`` takes boto3 clients (the Pricing client must be in
us-east-1, eu-central-1 or ap-south-1), so it runs unchanged against AWS, and
in tests against botocore's Stubber (Pricing, which moto lacks) and moto (EC2
spot history). Parsing is pure: ``parse_*`` take the API's PriceList JSON.
Prices the Pricing API does not give simply (S3 request and retrieval fees,
Glacier overheads) are carried over from the previous snapshot, and the new
snapshot says so.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .catalog import validate_snapshot

log = logging.getLogger("lens.costs")

EC2_BASE_FILTERS = (
    ("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"),
    ("capacitystatus", "Used"), ("licenseModel", "No License required"),
)
S3_VOLUME_TYPES = {
    "Standard": "STANDARD",
    "Reduced Redundancy": "REDUCED_REDUNDANCY",
    "Standard - Infrequent Access": "STANDARD_IA",
    "One Zone - Infrequent Access": "ONEZONE_IA",
    "Intelligent-Tiering Frequent Access": "INTELLIGENT_TIERING",
    "Glacier Instant Retrieval": "GLACIER_IR",
    "Amazon Glacier": "GLACIER",
    "Glacier Deep Archive": "DEEP_ARCHIVE",
    "Express One Zone": "EXPRESS_ONEZONE",
    "S3 Express One Zone": "EXPRESS_ONEZONE",
}
BATCH = 40  # instance types per ANY_OF filter


def _filters(pairs, region: str) -> list[dict]:
    return [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}] + [
        {"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in pairs]


def get_products(pricing, service: str, filters: list[dict]) -> list[dict]:
    """All products for the filters, pages followed, PriceList strings decoded."""
    out, token = [], None
    while True:
        kwargs = {"ServiceCode": service, "Filters": filters, "FormatVersion": "aws_v1",
                  "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = pricing.get_products(**kwargs)
        out += [json.loads(p) if isinstance(p, str) else p for p in page.get("PriceList", [])]
        token = page.get("NextToken")
        if not token:
            return out


def ondemand_dimensions(product: dict) -> list[dict]:
    dims = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        dims += list(term.get("priceDimensions", {}).values())
    return dims


def first_tier_usd(product: dict) -> tuple[Decimal, str] | None:
    """The first-tier (beginRange 0) on-demand USD price and its unit."""
    dims = sorted(ondemand_dimensions(product), key=lambda d: Decimal(d.get("beginRange", "0")))
    for d in dims:
        price = d.get("pricePerUnit", {}).get("USD")
        if price is not None:
            return Decimal(price), d.get("unit", "")
    return None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def cpu_vendor(physical_processor: str) -> str | None:
    """``aws`` (Graviton), ``amd`` or ``intel`` from the Pricing API's physicalProcessor."""
    for needle, vendor in (("Graviton", "aws"), ("AMD", "amd"), ("Intel", "intel")):
        if needle in physical_processor:
            return vendor
    return None


def parse_ec2(products: Iterable[dict]) -> dict[str, dict]:
    out = {}
    for p in products:
        a = p.get("product", {}).get("attributes", {})
        if any(a.get(f, v) != v for f, v in EC2_BASE_FILTERS) or "instanceType" not in a:
            continue
        price = first_tier_usd(p)
        if price is None or price[0] <= 0 or not price[1].startswith("Hr"):
            continue
        entry = {"ondemand_hour": _plain(price[0])}
        if a.get("vcpu", "").isdigit():
            entry["vcpu"] = int(a["vcpu"])
        mem = a.get("memory", "").replace(",", "").split(" ")[0]
        try:
            entry["memory_gib"] = float(Decimal(mem)) if "." in mem else int(mem)
        except (ValueError, ArithmeticError):
            pass
        gpus = a.get("gpu", "0")
        entry["gpus"] = int(gpus) if gpus.isdigit() else 0
        vendor = cpu_vendor(a.get("physicalProcessor", ""))
        if vendor:  # atom places jobs by arch and vendor (x86_64-amd, x86_64-intel, arm64)
            entry["cpu_vendor"] = vendor
            entry["arch"] = "arm64" if vendor == "aws" else "x86_64"
        out[a["instanceType"]] = entry
    return out


def parse_ebs_gp3(products: Iterable[dict]) -> dict[str, str]:
    out = {}
    for p in products:
        family = p.get("product", {}).get("productFamily", "")
        price = first_tier_usd(p)
        if price is None:
            continue
        usd, unit = price
        if family == "Storage" and unit.startswith("GB"):
            out["gb_month"] = _plain(usd)
        elif family == "System Operation" and "IOPS" in unit:
            out["iops_month"] = _plain(usd)
        elif family == "Provisioned Throughput":
            out["throughput_mibps_month"] = _plain(usd / 1024 if unit.startswith("GiBps") else usd)
    return out


def parse_s3_storage(products: Iterable[dict]) -> dict[str, str]:
    out = {}
    for p in products:
        a = p.get("product", {}).get("attributes", {})
        cls = S3_VOLUME_TYPES.get(a.get("volumeType", ""))
        price = first_tier_usd(p)
        if cls and price and price[1].startswith("GB"):
            out[cls] = _plain(price[0])
    return out


def latest_spot(history: Iterable[dict]) -> dict[str, dict]:
    """Newest price per (type, AZ) -> ``{type: {price_hour: cheapest AZ, by_az, as_of}}``."""
    newest: dict[tuple[str, str], dict] = {}
    for h in history:
        key = (h["InstanceType"], h["AvailabilityZone"])
        if key not in newest or h["Timestamp"] > newest[key]["Timestamp"]:
            newest[key] = h
    out: dict[str, dict] = {}
    for (itype, az), h in sorted(newest.items()):
        e = out.setdefault(itype, {"by_az": {}, "as_of": None})
        e["by_az"][az] = _plain(Decimal(h["SpotPrice"]))
        ts = h["Timestamp"].astimezone(UTC).isoformat()
        e["as_of"] = max(e["as_of"] or ts, ts)
    for e in out.values():
        e["price_hour"] = min(e["by_az"].values(), key=Decimal)
    return out


def spot_history(ec2, instance_types: list[str], now: datetime) -> list[dict]:
    out = []
    for i in range(0, len(instance_types), BATCH):
        kwargs = {"InstanceTypes": instance_types[i:i + BATCH],
                  "ProductDescriptions": ["Linux/UNIX"], "StartTime": now - timedelta(hours=6)}
        while True:
            page = ec2.describe_spot_price_history(**kwargs)
            out += page.get("SpotPriceHistory", [])
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
    return out


def refresh_snapshot(base: dict, pricing, ec2_for_region: Callable[[str], object] | None,
                     regions: list[str] | None = None, instance_types: list[str] | None = None,
                     now: datetime | None = None) -> dict:
    """A new snapshot: ``base`` updated with what the APIs return. ``ec2_for_region=None``
    skips spot prices."""
    now = now or datetime.now(UTC)
    snap = copy.deepcopy(base)
    regions = regions or sorted(snap["regions"])
    counts: dict[str, dict] = {}
    template = base["regions"].get("us-east-1") or base["regions"][sorted(base["regions"])[0]]
    for region in regions:
        if region not in snap["regions"]:
            # a new region: EC2 prices only from the API; S3/EBS fee structure from the template
            snap["regions"][region] = {"ec2": {}, "spot": {}, "ebs": copy.deepcopy(template["ebs"]),
                                       "s3": copy.deepcopy(template["s3"]),
                                       "carried_from": "us-east-1 fees where the API gave none"}
        reg = snap["regions"][region]
        types = instance_types or sorted(reg["ec2"] or template["ec2"])
        got: dict[str, dict] = {}
        for i in range(0, len(types), BATCH):
            filters = _filters(EC2_BASE_FILTERS, region) + [
                {"Type": "ANY_OF", "Field": "instanceType", "Value": ",".join(types[i:i + BATCH])}]
            got.update(parse_ec2(get_products(pricing, "AmazonEC2", filters)))
        for itype, entry in got.items():
            reg["ec2"][itype] = {**reg["ec2"].get(itype, {}), **entry}
        gp3 = parse_ebs_gp3(get_products(pricing, "AmazonEC2", _filters([("volumeApiName", "gp3")], region)))
        reg["ebs"].setdefault("gp3", {}).update(gp3)
        s3 = parse_s3_storage(get_products(pricing, "AmazonS3", _filters([("productFamily", "Storage")], region)))
        for cls, price in s3.items():
            if cls in reg["s3"]:
                reg["s3"][cls]["gb_month"] = price
        spot = {}
        if ec2_for_region is not None:
            spot = latest_spot(spot_history(ec2_for_region(region), types, now))
            reg["spot"] = spot
        missing = sorted(set(types) - set(got))
        if missing:
            log.warning("prices refresh: %s: no Pricing API price for %s (kept old)", region, missing)
        counts[region] = {"ec2": len(got), "ec2_missing": missing, "ebs_gp3": sorted(gp3),
                          "s3_storage": sorted(s3), "spot": len(spot)}
    snap["previous"] = {"date": base["date"], "source": base["source"]}
    snap["date"] = now.date().isoformat()
    snap["source"] = (
        f"AWS Pricing API (pricing.get_products) and EC2 spot price history, fetched {now:%Y-%m-%dT%H:%MZ}; "
        f"S3 request/retrieval fees, Glacier overheads and types the API did not return carried from "
        f"the snapshot of {base['date']}")
    snap["refreshed"] = counts
    validate_snapshot(snap)
    return snap
