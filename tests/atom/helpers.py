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
    return group_size(pgid) > 0


def group_size(pgid: int) -> int:
    """How many live (non-zombie) processes are in process group ``pgid``."""
    import os

    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":  # zombies are dead
                    count += 1
            except (FileNotFoundError, ProcessLookupError):
                continue
    return count


async def wait_until(what: str, condition, limit: float = 20, interval: float = 0.05):
    """Poll ``condition()`` until it is true; fail saying WHAT after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {limit} s: {what}")
        await asyncio.sleep(interval)
