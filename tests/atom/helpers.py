"""Shared helpers for atom tests."""

from __future__ import annotations

import asyncio
import time

from jupyter_ext.atom.backends.base import TERMINAL_STATES


async def settle(manager, user: str, ids, limit: float = 60, interval: float = 0.1):
    """Refresh until every job in ``ids`` is terminal; return their records."""
    ids = list(ids)
    deadline = time.monotonic() + limit
    while True:
        await manager.refresh()
        recs = [manager.get(user, i) for i in ids]
        if all(r["state"] in TERMINAL_STATES for r in recs):
            return recs
        if time.monotonic() > deadline:
            raise TimeoutError([(r["id"], r["state"], r["counts"]) for r in recs])
        await asyncio.sleep(interval)


def group_alive(pgid: int) -> bool:
    """Is any process left in process group ``pgid``?"""
    import os

    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":  # zombies are dead
                    return True
            except (FileNotFoundError, ProcessLookupError):
                continue
    return False
