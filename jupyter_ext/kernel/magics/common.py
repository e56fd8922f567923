"""Shared helpers of the magics: argument parsing and turning errors into UsageError."""

from __future__ import annotations

import shlex
from contextlib import contextmanager

from IPython.core.error import UsageError

from jupyter_ext.kernel.client import LensClient, LensClientError


def split_line(line: str) -> list[str]:
    """shlex, so quoted arguments stay whole; unbalanced quotes are a UsageError."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot parse the arguments: {exc}") from None


@contextmanager
def lens_errors():
    """Service and validation failures become UsageErrors: a message, no traceback."""
    try:
        yield
    except LensClientError as exc:
        raise UsageError(exc.message) from None


class ShownDict(dict):
    """A magic's result its own table already showed: usable in code
    (``task = %archive ... --wait``), but the cell shows no repr of it as well."""

    def _ipython_display_(self):
        pass


class ShownList(list):
    """See ``ShownDict``."""

    def _ipython_display_(self):
        pass


def shown(value):
    """``value`` marked as already shown (dicts and lists; anything else unchanged)."""
    if isinstance(value, dict):
        return ShownDict(value)
    if isinstance(value, list):
        return ShownList(value)
    return value


def client() -> LensClient:
    return LensClient()
