"""CSV cells that spreadsheets will not run as formulas (CSV / formula injection).

OWASP's recipe: a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return gets a leading ``'``, so Excel, LibreOffice and Google Sheets
show it as text instead of evaluating it (``=HYPERLINK(...)``, ``@SUM(...)``, DDE).
Plain numbers (``-12.50``) are left alone: they cannot be formulas.

Pure, standard library only: the workshop sheet and the costs exports share it.
"""

from __future__ import annotations

import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def safe_cell(value):
    """``value`` made safe for a CSV cell; non-text values are returned unchanged."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.match(value):
        return GUARD + value
    return value


def safe_row(values) -> list:
    return [safe_cell(v) for v in values]


def unguard_cell(value: str) -> str:
    """The original text of a cell written by :func:`safe_cell` (for reading back)."""
    if value.startswith(GUARD) and value[1:].startswith(TRIGGERS) and not _NUMBER.match(value[1:]):
        return value[1:]
    return value
