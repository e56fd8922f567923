"""Meter math, checked against formulas written out independently with Fractions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from jupyter_ext.costs.meter import (
    cost_for_seconds,
    restore_cost,
    storage_cost,
)
from jupyter_ext.costs.money import to_micro, usd

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
GIB = 2**30


def micro(frac: Fraction) -> int:
    """Round half up to whole micro-dollars, independently of the code under test."""
    return int((frac * 1_000_000 + Fraction(1, 2)) // 1)


def test_money_is_integer_and_exact():
    assert to_micro("0.0416") == 41_600
    assert to_micro("0.0000005") == 1  # half up
    assert usd(1_234_567_890) == "$1,234.57"
    with pytest.raises(TypeError, match="not float"):
        to_micro(0.1)


def test_cost_for_seconds_matches_rate_times_time():
    assert cost_for_seconds("0.0416", 3600) == 41_600
    assert cost_for_seconds("0.0416", 90) == micro(Fraction("0.0416") * 90 / 3600)
    assert cost_for_seconds("16.288", 7 * 86400) == micro(Fraction("16.288") * 7 * 24)


def test_standard_storage_per_gb_month(catalog):
    c = storage_cost(catalog, "STANDARD", 100 * GIB, 10, T0, T0 + timedelta(hours=730),
                     include_puts=False)
    assert c.storage_micro == micro(Fraction("0.023") * 100)
    assert c.early_deletion_micro == 0 and c.overhead_standard_bytes == 0


def test_glacier_minimum_duration_early_deletion_and_object_overhead(catalog):
    n, size = 1000, 50 * GIB
    deleted_after = timedelta(days=30)
    c = storage_cost(catalog, "GLACIER", size, n, T0, T0 + deleted_after, deleted=True)
    billable = size + n * 32 * 1024
    std_over = n * 8 * 1024
    per_month = Fraction("0.0036") * billable / GIB + Fraction("0.023") * std_over / GIB
    per_hour = per_month / 730
    assert c.billable_bytes == billable and c.overhead_standard_bytes == std_over
    assert c.storage_micro == micro(per_hour * 24 * 30)
    assert c.early_deletion_micro == micro(per_hour * 24 * 60)  # 90-day minimum
    assert c.requests_micro == micro(Fraction("0.03") * n / 1000)
    # kept past the minimum: no fee; still stored (not deleted): no fee either
    assert storage_cost(catalog, "GLACIER", size, n, T0, T0 + timedelta(days=91),
                        deleted=True).early_deletion_micro == 0
    assert storage_cost(catalog, "GLACIER", size, n, T0, T0 + deleted_after).early_deletion_micro == 0


def test_deep_archive_180_days_and_ia_minimum_object_size(catalog):
    c = storage_cost(catalog, "DEEP_ARCHIVE", GIB, 1, T0, T0 + timedelta(days=10), deleted=True,
                     include_puts=False)
    per_hour = (Fraction("0.00099") * (GIB + 32 * 1024) / GIB + Fraction("0.023") * 8 * 1024 / GIB) / 730
    assert c.total_micro == micro(per_hour * 24 * 10) + micro(per_hour * 24 * 170)
    # 1000 objects of 1 KB in STANDARD_IA are billed as 128 KB each
    ia = storage_cost(catalog, "STANDARD_IA", 1000 * 1024, 1000, T0, T0 + timedelta(hours=730),
                      include_puts=False)
    assert ia.billable_bytes == 1000 * 128 * 1024
    assert ia.storage_micro == micro(Fraction("0.0125") * 1000 * 128 * 1024 / GIB)


def test_restore_fees_by_tier(catalog):
    assert restore_cost(catalog, "GLACIER", 10 * GIB, 100, "Expedited").amount_micro == micro(
        Fraction("0.03") * 10 + Fraction("10") * 100 / 1000)
    assert restore_cost(catalog, "GLACIER", 10 * GIB, 100, "Bulk").amount_micro == 0
    assert restore_cost(catalog, "DEEP_ARCHIVE", 10 * GIB, 100, "Bulk").amount_micro == micro(
        Fraction("0.0025") * 10 + Fraction("0.025") * 100 / 1000)
    with pytest.raises(ValueError, match="tier: 'Expedited'"):
        restore_cost(catalog, "DEEP_ARCHIVE", GIB, 1, "Expedited")
    ia = restore_cost(catalog, "STANDARD_IA", 10 * GIB, 100)
    assert ia.amount_micro == micro(Fraction("0.01") * 10 + Fraction("0.001") * 100 / 1000)
    assert ia.snapshot["date"] == catalog.info.date
