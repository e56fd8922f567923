"""S3 storage and retrieval prices, and pure cost functions over them.

Money is integer micro-dollars (1 USD = 1_000_000). The default table below is a
small snapshot of us-east-1 list prices; the costs area ships the real price
snapshot later and callers pass it as ``prices=`` (same shape), so this module is
the only place to swap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

GB = 1024**3
KB = 1024
MICRO = 1_000_000
DAY = 86400
MONTH_DAYS = 30

STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)
# Classes whose objects must be thawed (RestoreObject) before a GET.
COLD_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
TIERS = ("bulk", "standard", "expedited")

# storage: micro-dollars per GB-month; min_days: minimum storage duration;
# min_object: minimum billable object size (bytes); overhead: per-object extra bytes
# billed at the class price (overhead_class) and at STANDARD (overhead_standard).
DEFAULT_PRICES: dict = {
    "storage": {
        "STANDARD": {"per_gb_month": 23_000, "min_days": 0, "min_object": 0},
        "STANDARD_IA": {"per_gb_month": 12_500, "min_days": 30, "min_object": 128 * KB},
        "INTELLIGENT_TIERING": {"per_gb_month": 23_000, "min_days": 0, "min_object": 0,
                                "monitoring_per_1000_objects": 2_500},
        "GLACIER_IR": {"per_gb_month": 4_000, "min_days": 90, "min_object": 128 * KB},
        "GLACIER": {"per_gb_month": 3_600, "min_days": 90, "min_object": 0,
                    "overhead_class": 32 * KB, "overhead_standard": 8 * KB},
        "DEEP_ARCHIVE": {"per_gb_month": 990, "min_days": 180, "min_object": 0,
                         "overhead_class": 32 * KB, "overhead_standard": 8 * KB},
    },
    "put_per_1000": {
        "STANDARD": 5_000, "STANDARD_IA": 10_000, "INTELLIGENT_TIERING": 5_000,
        "GLACIER_IR": 20_000, "GLACIER": 30_000, "DEEP_ARCHIVE": 50_000,
    },
    # Retrieval: per GB and per 1000 restore requests, and expected hours (low, high).
    "retrieval": {
        "GLACIER": {
            "bulk": {"per_gb": 0, "per_1000": 0, "hours": (5, 12)},
            "standard": {"per_gb": 10_000, "per_1000": 50_000, "hours": (3, 5)},
            "expedited": {"per_gb": 30_000, "per_1000": 10_000_000, "hours": (0.02, 0.08)},
        },
        "DEEP_ARCHIVE": {
            "bulk": {"per_gb": 2_500, "per_1000": 25_000, "hours": (48, 48)},
            "standard": {"per_gb": 20_000, "per_1000": 100_000, "hours": (12, 12)},
        },
        "GLACIER_IR": {"standard": {"per_gb": 30_000, "per_1000": 0, "hours": (0, 0)}},
        "STANDARD_IA": {"standard": {"per_gb": 10_000, "per_1000": 0, "hours": (0, 0)}},
    },
}


def check_class(storage_class: str) -> str:
    if storage_class not in STORAGE_CLASSES:
        raise ConfigError(
            f"storage_class: {storage_class!r} is not one of {', '.join(STORAGE_CLASSES)}")
    return storage_class


def check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise ConfigError(f"tier: {tier!r} is not one of {', '.join(TIERS)}")
    return tier


def _micro(per_gb: int, nbytes: float) -> int:
    return math.ceil(per_gb * nbytes / GB)


@dataclass(frozen=True)
class StorageCost:
    storage_class: str
    objects: int
    stored_bytes: int
    billed_bytes: int          # after minimum object size and Glacier overhead
    monthly: int               # micro-dollars per month
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
            "monthly_micro": self.monthly, "minimum_charge_micro": self.minimum_charge,
            "min_days": self.min_days, "upload_micro": self.upload,
        }


def storage_cost(object_sizes, storage_class: str, prices: dict | None = None) -> StorageCost:
    """Monthly cost of storing objects of the given sizes in one class.

    Counts the minimum billable object size, the 40 KB per-object Glacier overhead
    (32 KB at the class price + 8 KB at STANDARD), Intelligent-Tiering monitoring,
    PUT requests and the charge implied by the minimum storage duration.
    """
    prices = prices or DEFAULT_PRICES
    check_class(storage_class)
    row = prices["storage"][storage_class]
    sizes = list(object_sizes)
    n = len(sizes)
    stored = sum(sizes)
    billed = sum(max(s, row.get("min_object", 0)) for s in sizes)
    over_cls = row.get("overhead_class", 0) * n
    over_std = row.get("overhead_standard", 0) * n
    monthly = _micro(row["per_gb_month"], billed + over_cls)
    monthly += _micro(prices["storage"]["STANDARD"]["per_gb_month"], over_std)
    monthly += math.ceil(row.get("monitoring_per_1000_objects", 0) * n / 1000)
    min_days = row.get("min_days", 0)
    minimum = math.ceil(monthly * min_days / MONTH_DAYS)
    upload = math.ceil(prices["put_per_1000"].get(storage_class, 0) * n / 1000)
    return StorageCost(storage_class, n, stored, billed + over_cls + over_std, monthly,
                       minimum, min_days, upload)


def early_deletion_fee(cost: StorageCost, days_stored: float) -> int:
    """Pro-rated charge for the rest of the minimum storage duration."""
    remaining = max(0.0, cost.min_days - max(0.0, days_stored))
    return math.ceil(cost.monthly * remaining / MONTH_DAYS)


def accrued(monthly_micro: int, seconds: float) -> int:
    """Micro-dollars owed for keeping something that costs ``monthly_micro`` per
    30-day month for ``seconds`` (what a ledger charges per interval)."""
    return math.ceil(monthly_micro * max(0.0, seconds) / (MONTH_DAYS * DAY))


def cost_table(object_sizes, hot_sizes=(), prices: dict | None = None,
               classes=STORAGE_CLASSES) -> list[dict]:
    """Cost per class for data packs in that class plus metadata objects in STANDARD."""
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


def retrieval_estimates(objects_by_class: dict, prices: dict | None = None) -> list[RetrievalEstimate]:
    """Cost and expected time of each tier for thawing ``{class: [sizes]}``.

    A tier that a class does not offer (expedited for DEEP_ARCHIVE) is omitted.
    Classes without a thaw (STANDARD, IA, GLACIER_IR) add their per-GB fee only.
    """
    prices = prices or DEFAULT_PRICES
    out = []
    for tier in TIERS:
        total, objs, nbytes, lo, hi, ok = 0, 0, 0, 0.0, 0.0, True
        for cls, sizes in objects_by_class.items():
            sizes = list(sizes)
            if not sizes:
                continue
            table = prices["retrieval"].get(cls)
            if table is None:
                continue
            row = table.get(tier) or (table.get("standard") if cls not in COLD_CLASSES else None)
            if row is None:
                ok = False
                break
            objs += len(sizes)
            nbytes += sum(sizes)
            total += _micro(row["per_gb"], sum(sizes)) + math.ceil(row["per_1000"] * len(sizes) / 1000)
            lo, hi = max(lo, row["hours"][0]), max(hi, row["hours"][1])
        if ok:
            out.append(RetrievalEstimate(tier, objs, nbytes, total, (lo, hi)))
    return out


def format_micro(micro: int) -> str:
    return f"${micro / MICRO:,.4f}"
