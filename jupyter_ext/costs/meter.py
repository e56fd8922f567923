"""Meter math: usage -> micro-dollars (pure functions, exact Decimal, rounded once).

Conventions (as AWS bills them): a GB is 2**30 bytes; a month is 730 hours;
minimum storage durations are in days; Glacier Flexible Retrieval and Deep
Archive add 40 KB per object (32 KB at the class rate for the index, 8 KB at
the S3 Standard rate for the object name and metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from .budgets import utc
from .catalog import PriceCatalog
from .money import MICRO, dec, round_micro

GB = 2**30
KB = 1024
HOURS_PER_MONTH = Decimal(730)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class Estimate:
    """A cost figure and the price snapshot it came from."""

    amount_micro: int
    snapshot: dict
    detail: dict = field(default_factory=dict)

    @property
    def snapshot_label(self) -> str:
        return f"price snapshot {self.snapshot.get('date')} ({self.snapshot.get('source', '').split(';')[0]})"

    def as_dict(self) -> dict:
        return {"amount_micro": self.amount_micro, "snapshot": self.snapshot,
                "snapshot_label": self.snapshot_label, "detail": self.detail}


# -- time-based ----------------------------------------------------------------------
def cost_for_seconds(rate_usd_hour: Decimal | str, seconds: int | Decimal) -> int:
    """Micro-dollars for running ``seconds`` at ``rate_usd_hour``."""
    if Decimal(seconds) < 0:
        raise ValueError("seconds: must be >= 0")
    return round_micro(dec(rate_usd_hour, "rate_usd_hour") * MICRO * Decimal(seconds) / 3600)


# -- Dask and jobs ----------------------------------------------------------------------
# -- storage ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StorageCost:
    storage_micro: int  # time actually stored
    early_deletion_micro: int  # the rest of the minimum duration, when deleted early
    requests_micro: int  # PUTs to write the objects
    billable_bytes: int  # incl. minimum object size and per-object overhead (class part)
    overhead_standard_bytes: int  # Glacier's 8 KB per object, billed at STANDARD
    snapshot: dict = field(default_factory=dict)

    @property
    def total_micro(self) -> int:
        return self.storage_micro + self.early_deletion_micro + self.requests_micro

    def as_dict(self) -> dict:
        return {"storage_micro": self.storage_micro, "early_deletion_micro": self.early_deletion_micro,
                "requests_micro": self.requests_micro, "total_micro": self.total_micro,
                "billable_bytes": self.billable_bytes,
                "overhead_standard_bytes": self.overhead_standard_bytes, "snapshot": self.snapshot}


def storage_rate(catalog: PriceCatalog, storage_class: str, size_bytes: int, n_objects: int,
                 region: str | None = None) -> tuple[Decimal, int, int]:
    """(USD per hour, billable class bytes, STANDARD overhead bytes) for stored objects.

    The minimum billable object size is applied to the average object (exact
    when objects are the same size, as archive packs nearly are).
    """
    if size_bytes < 0 or n_objects < 0:
        raise ValueError("size_bytes, n_objects: must be >= 0")
    cls = catalog.s3(storage_class, region)
    min_bytes = int(cls.get("min_billable_object_kb", 0)) * KB
    billable = max(size_bytes, n_objects * min_bytes)
    std_overhead = 0
    overhead = cls.get("overhead_kb")
    if overhead:
        billable += n_objects * int(overhead["class"]) * KB
        std_overhead = n_objects * int(overhead["STANDARD"]) * KB
    per_gb_month = dec(cls["gb_month"]) * billable
    per_gb_month += dec(catalog.s3("STANDARD", region)["gb_month"]) * std_overhead
    if storage_class == "INTELLIGENT_TIERING" and cls.get("monitoring_per_1000_objects"):
        per_gb_month_monitor = dec(cls["monitoring_per_1000_objects"]) * n_objects / 1000
    else:
        per_gb_month_monitor = Decimal(0)
    rate = (per_gb_month / GB + per_gb_month_monitor) / HOURS_PER_MONTH
    return rate, billable, std_overhead


def storage_cost(catalog: PriceCatalog, storage_class: str, size_bytes: int, n_objects: int,
                 stored_at: datetime, until: datetime, deleted: bool = False,
                 region: str | None = None, include_puts: bool = True) -> StorageCost:
    """Cost of keeping objects from ``stored_at`` to ``until``; ``deleted`` adds the
    early-deletion fee for the rest of the class's minimum storage duration."""
    rate, billable, std_overhead = storage_rate(catalog, storage_class, size_bytes, n_objects, region)
    seconds = max(Decimal(0), Decimal(str((utc(until) - utc(stored_at)).total_seconds())))
    cls = catalog.s3(storage_class, region)
    min_seconds = Decimal(int(cls.get("min_storage_days", 0)) * SECONDS_PER_DAY)
    storage = round_micro(rate * MICRO * seconds / 3600)
    early = 0
    if deleted and seconds < min_seconds:
        early = round_micro(rate * MICRO * (min_seconds - seconds) / 3600)
    puts = round_micro(dec(cls["put_per_1000"]) * n_objects * MICRO / 1000) if include_puts else 0
    return StorageCost(storage, early, puts, billable, std_overhead, catalog.info.as_dict())


def restore_cost(catalog: PriceCatalog, storage_class: str, size_bytes: int, n_objects: int,
                 tier: str = "Standard", region: str | None = None) -> Estimate:
    """Retrieval fee to restore (Glacier classes, by tier) or read back (IA classes)."""
    cls = catalog.s3(storage_class, region)
    gb = Decimal(size_bytes) / GB
    restore = cls.get("restore")
    if restore:
        if tier not in restore:
            raise ValueError(f"tier: {tier!r}; allowed for {storage_class}: {', '.join(restore)}")
        usd = dec(restore[tier]["gb"]) * gb + dec(restore[tier]["per_1000"]) * n_objects / 1000
    else:
        usd = dec(cls.get("retrieval_gb", "0")) * gb + dec(cls["get_per_1000"]) * n_objects / 1000
    return Estimate(round_micro(usd * MICRO), catalog.info.as_dict(),
                    {"storage_class": storage_class, "tier": tier if restore else None})


def min_storage_seconds(catalog: PriceCatalog, storage_class: str, region: str | None = None) -> int:
    return int(catalog.s3(storage_class, region).get("min_storage_days", 0)) * SECONDS_PER_DAY
