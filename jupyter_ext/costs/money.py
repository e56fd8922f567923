"""Money as integers: micro-dollars (1 USD = 1,000,000 µ$). Never floats.

Prices are kept as exact ``Decimal`` values parsed from strings; a cost is
computed in ``Decimal`` and rounded once, half up, to whole micro-dollars.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICRO = 1_000_000
_MICRO_D = Decimal(MICRO)


def dec(value: str | int | Decimal, field: str = "amount") -> Decimal:
    """Parse an exact decimal; floats are refused (they are not exact)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{field}: give a string, int or Decimal, not {type(value).__name__}")
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{field}: {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError(f"{field}: {value!r} is not a finite number")
    return result


def to_micro(dollars: str | int | Decimal, field: str = "amount") -> int:
    """USD (exact decimal) -> integer micro-dollars, rounded half up."""
    return int((dec(dollars, field) * _MICRO_D).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_micro(micro: Decimal) -> int:
    """A Decimal amount of micro-dollars -> int, rounded half up."""
    return int(micro.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def usd(micro: int, places: int = 2) -> str:
    """Format micro-dollars as ``$1,234.56`` (``places`` decimals, half up)."""
    value = (Decimal(int(micro)) / _MICRO_D).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{places}f}"


def usd_plain(micro: int) -> str:
    """Micro-dollars as an exact plain decimal string (``12.345678``), for CSV and JSON."""
    value = Decimal(int(micro)) / _MICRO_D
    return f"{value:.6f}"
