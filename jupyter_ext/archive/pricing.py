"""Archive storage and retrieval costs, priced from the costs price catalog.

Every figure comes from the ``PriceCatalog`` (``prices.json`` or the snapshot
``lens prices refresh`` wrote) that the ``ArchiveEngine`` is given, through the
costs meter's own formulas (``costs.meter.storage_rate``, ``restore_cost``,
``cost_for_seconds``): a dry run quotes what the ledger then charges. Money is
integer micro-dollars; a month is AWS's 730 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..constants import (
    COLD_CLASSES,
    HOURS_PER_MONTH,
    MICRO,
    RETRIEVAL_TIERS,
    STORAGE_CLASSES,
    TIER_NAMES,
)
from ..costs import meter
from ..costs.catalog import PriceCatalog, PriceNotFound
from ..costs.money import dec, round_micro
from .errors import ConfigError

DAY = 86400
MONTH_SECONDS = HOURS_PER_MONTH * 3600


def check_class(storage_class: str) -> str:
    if storage_class not in STORAGE_CLASSES:
        raise ConfigError(
            f"storage_class: {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
    return storage_class


def check_tier(tier: str) -> str:
    if tier not in RETRIEVAL_TIERS:
        raise ConfigError(f"tier: {tier!r} is not one of {', '.join(RETRIEVAL_TIERS)}")
    return tier


def _s3(prices: PriceCatalog, storage_class: str) -> dict:
    try:
        return prices.s3(storage_class)
    except PriceNotFound as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class StorageCost:
    storage_class: str
    objects: int
    stored_bytes: int
    billed_bytes: int          # after minimum object size and Glacier overhead
    rate_usd_hour: Decimal     # what the ledger meters per hour while the objects are stored
    monthly: int               # micro-dollars per 730-hour month
    minimum_charge: int        # micro-dollars owed for the minimum storage duration
    min_days: int
    upload: int                # PUT request cost, micro-dollars

    def early_deletion_fee(self, days_stored: float) -> int:
        """Fee (micro-dollars) for deleting after ``days_stored`` days."""
        return early_deletion_fee(self, days_stored)

    def as_dict(self) -> dict:
        return {
            "storage_class": self.storage_class, "objects": self.objects,
            "stored_bytes": self.stored_bytes, "billed_bytes": self.billed_bytes,
            "rate_usd_hour": str(self.rate_usd_hour),
            "monthly_micro": self.monthly, "minimum_charge_micro": self.minimum_charge,
            "min_days": self.min_days, "upload_micro": self.upload,
        }


def storage_cost(object_sizes, storage_class: str, prices: PriceCatalog) -> StorageCost:
    """Monthly cost of storing objects of the given sizes in one class.

    Counts the minimum billable object size, the 40 KB per-object Glacier overhead
    (32 KB at the class price + 8 KB at STANDARD), Intelligent-Tiering monitoring,
    PUT requests and the charge implied by the minimum storage duration.
    """
    check_class(storage_class)
    row = _s3(prices, storage_class)
    sizes = list(object_sizes)
    n, stored = len(sizes), sum(sizes)
    rate, billable, std_overhead = meter.storage_rate(prices, storage_class, stored, n)
    min_days = int(row.get("min_storage_days", 0))
    return StorageCost(
        storage_class, n, stored, billable + std_overhead, rate,
        meter.cost_for_seconds(rate, MONTH_SECONDS),
        meter.cost_for_seconds(rate, min_days * DAY), min_days,
        round_micro(dec(row["put_per_1000"]) * n * MICRO / 1000))


def early_deletion_fee(cost: StorageCost, days_stored: float) -> int:
    """Pro-rated charge for the rest of the minimum storage duration."""
    remaining = max(0.0, cost.min_days - max(0.0, days_stored))
    return meter.cost_for_seconds(cost.rate_usd_hour, Decimal(str(remaining)) * DAY)


def accrued(cost: StorageCost, seconds: float) -> int:
    """Micro-dollars owed for keeping the objects of ``cost`` for ``seconds`` (what the
    ledger charges per interval)."""
    return meter.cost_for_seconds(cost.rate_usd_hour, Decimal(str(max(0.0, seconds))))


def cost_table(object_sizes, hot_sizes=(), prices: PriceCatalog | None = None,
               classes=STORAGE_CLASSES) -> list[dict]:
    """Cost per class for data packs in that class plus metadata objects in STANDARD."""
    if prices is None:
        raise ConfigError("prices: the cost table needs the price catalog")
    data = list(object_sizes)
    hot = storage_cost(hot_sizes, "STANDARD", prices)
    rows = []
    for cls in classes:
        c = storage_cost(data, cls, prices)
        row = c.as_dict()
        row["early_delete_30d_micro"] = c.early_deletion_fee(30)
        row["hot_monthly_micro"] = hot.monthly
        row["total_monthly_micro"] = c.monthly + hot.monthly
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RetrievalEstimate:
    tier: str
    objects: int
    nbytes: int
    cost: int                 # micro-dollars
    hours: tuple              # (low, high) expected hours until readable

    def as_dict(self) -> dict:
        return {"tier": self.tier, "objects": self.objects, "bytes": self.nbytes,
                "cost_micro": self.cost, "hours": list(self.hours)}


def retrieval_estimates(objects_by_class: dict, prices: PriceCatalog) -> list[RetrievalEstimate]:
    """Cost and expected time of each tier for reading back ``{class: [sizes]}``.

    Cold classes (GLACIER, DEEP_ARCHIVE) are thawed at the tier's restore price; a tier
    a class does not offer (expedited for DEEP_ARCHIVE) is omitted. Other classes add
    their retrieval and GET fees (``costs.meter.restore_cost``) and are readable at once.
    """
    out = []
    for tier in RETRIEVAL_TIERS:
        total, objs, nbytes, lo, hi, ok = 0, 0, 0, 0.0, 0.0, True
        for cls, sizes in objects_by_class.items():
            sizes = list(sizes)
            if not sizes:
                continue
            restore = _s3(prices, cls).get("restore") if cls in COLD_CLASSES else None
            if restore is not None and TIER_NAMES[tier] not in restore:
                ok = False
                break
            try:
                est = meter.restore_cost(prices, cls, sum(sizes), len(sizes), TIER_NAMES[tier])
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            objs += len(sizes)
            nbytes += sum(sizes)
            total += est.amount_micro
            if restore is not None:
                hours = restore[TIER_NAMES[tier]].get("hours", (0, 0))
                lo, hi = max(lo, float(hours[0])), max(hi, float(hours[1]))
        if ok:
            out.append(RetrievalEstimate(tier, objs, nbytes, total, (lo, hi)))
    return out


def format_micro(micro: int) -> str:
    return f"${micro / MICRO:,.4f}"
