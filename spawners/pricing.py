"""Hourly price of a profile: its own `hourly_cost`, else its instance type's price."""

from __future__ import annotations

from collections.abc import Callable

from .profiles import Profile

PriceLookup = Callable[[str], float | None]


def default_price_lookup(instance_type: str) -> float | None:
    """On-demand USD/hour from the price snapshot shipped with lens (costs engine)."""
    from jupyter_ext.costs.catalog import PriceCatalog

    try:
        return float(PriceCatalog.load().hourly(instance_type))
    except (KeyError, LookupError, ValueError):
        return None


def hourly_rate(profile: Profile, lookup: PriceLookup = default_price_lookup) -> float | None:
    if profile.hourly_cost is not None:
        return profile.hourly_cost
    if profile.instance_type:
        return lookup(profile.instance_type)
    return None


def format_rate(rate: float | None) -> str:
    return "price unknown" if rate is None else f"${rate:,.3f}/h"
