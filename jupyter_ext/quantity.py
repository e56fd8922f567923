"""Memory sizes, one meaning everywhere: Kubernetes quantities.

``parse_quantity("4G")`` is 4×10⁹ bytes and ``parse_quantity("4Gi")`` is 4×2³⁰,
as in a pod's ``resources``; the same strings mean the same bytes in
``profiles.yaml``, in ``%atom --memory`` / job specs and in Dask Gateway options.

- decimal suffixes: ``k`` (also ``K``), ``M``, ``G``, ``T``, ``P``, ``E`` (powers of 1000)
- binary suffixes: ``Ki``, ``Mi``, ``Gi``, ``Ti``, ``Pi``, ``Ei`` (powers of 1024)
- a bare number is bytes, unless the caller names another unit for bare numbers
  (``bare_unit="Mi"``: a job spec's ``memory: 2048`` has always been MiB)
- fractions are allowed (``1.5Gi``) and rounded up to a whole byte
- everything else is refused with :class:`QuantityError`: signs, spaces inside,
  ``GB``/``GiB`` spellings, exponents, booleans, and values above
  :data:`MAX_BYTES` (2⁶³−1, Kubernetes' int64), so a 400-digit number is an
  error, not a huge integer.

Standard library only: any process or engine may import it.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

SUFFIXES: dict[str, int] = {
    "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
MAX_BYTES = 2**63 - 1
MAX_TEXT = 32  # longer strings are never a sensible size
_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)([A-Za-z]*)")
HINT = "a Kubernetes quantity such as 512Mi, 4Gi (2^30 bytes) or 4G (10^9 bytes)"


class QuantityError(ValueError):
    """Not a size: the message says what was given and what is accepted."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_quantity(value: Any, *, bare_unit: str = "") -> int:
    """Bytes from a Kubernetes quantity (str) or a number (int/float).

    ``bare_unit`` is the unit of a number without a suffix (default: bytes).
    Raises :class:`QuantityError` on anything else, or above :data:`MAX_BYTES`.
    """
    if bare_unit not in SUFFIXES:
        raise ValueError(f"unknown bare_unit {bare_unit!r}")
    if isinstance(value, bool):
        raise QuantityError(f"not a size: {value!r} (use {HINT})")
    if isinstance(value, int):
        amount, unit = Fraction(value), bare_unit
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a size: {value!r} (use {HINT})")
        amount, unit = Fraction(value), bare_unit
    elif isinstance(value, str):
        text = value.strip()
        m = _RE.fullmatch(text) if len(text) <= MAX_TEXT else None
        if not m or m.group(2) not in SUFFIXES:
            raise QuantityError(f"not a size: {_shown(value)} (use {HINT})")
        amount, unit = Fraction(m.group(1)), m.group(2) or bare_unit
    else:
        raise QuantityError(f"not a size: {type(value).__name__} {_shown(value)} (use {HINT})")
    if amount < 0:
        raise QuantityError(f"a size cannot be negative: {_shown(value)}")
    nbytes = math.ceil(amount * SUFFIXES[unit])
    if nbytes > MAX_BYTES:
        raise QuantityError(f"size {_shown(value)} is absurdly large (at most {MAX_BYTES} bytes, 8 EiB)")
    return nbytes

