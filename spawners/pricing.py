"""Hourly price of a profile: its own `hourly_cost`, else its instance type's price.

Instance prices come from the costs price catalog of this process
(``jupyter_ext.costs.catalog.process_catalog``: the snapshot ``lens prices refresh``
wrote, else the one shipped with lens), the same one the lens service meters with.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from .profiles import Profile

PriceLookup = Callable[[str], float | None]


def default_price_lookup(instance_type: str) -> float | None:
    """On-demand USD/hour from this process's price catalog (costs engine)."""
    from jupyter_ext.costs.catalog import process_catalog

    try:
        return float(process_catalog().hourly(instance_type))
    except (KeyError, LookupError, ValueError):
        return None


def hourly_rate(profile: Profile, lookup: PriceLookup = default_price_lookup) -> float | None:
    if profile.hourly_cost is not None:
        return profile.hourly_cost
    if profile.instance_type:
        return lookup(profile.instance_type)
    return None


def format_rate(rate: float | None) -> str:
    """``$0.096/h``: the exact rate that is metered (at least 3 decimals, never rounded)."""
    if rate is None:
        return "price unknown"
    exact = Decimal(str(rate)).normalize()
    places = max(3, -exact.as_tuple().exponent)
    return f"${exact:,.{places}f}/h"
