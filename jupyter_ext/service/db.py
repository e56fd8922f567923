"""The lens service database: the one lens database (see :mod:`jupyter_ext.db`)."""

from __future__ import annotations

from ..db.engine import make_engine
from ..db.tables import metadata, meter_watermarks, server_events

__all__ = ["make_engine", "metadata", "meter_watermarks", "server_events"]
