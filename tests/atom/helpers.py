"""Shared helpers for atom tests."""

from __future__ import annotations

import asyncio
import time

from jupyter_ext.atom.backends.base import TERMINAL_STATES


async def settle(manager, user: str, ids, timeout: float = 60, interval: float = 0.1):
    """Refresh until every job in ``ids`` is terminal; return their records."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        await manager.refresh()
        recs = [manager.get(user, i) for i in ids]
        if all(r["state"] in TERMINAL_STATES for r in recs):
            return recs
        if time.monotonic() > deadline:
            raise TimeoutError([(r["id"], r["state"], r["counts"]) for r in recs])
        await asyncio.sleep(interval)
