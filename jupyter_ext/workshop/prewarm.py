"""Pre-warmed classes: the seats' servers start before the class, so a student who
logs in lands on a running server.

- ``prewarm(hub, seats, profile)`` asks the hub to start every seat's server
  that is not running. The hub's start line (spawners/admission.py) paces them
  to what the machine can take, so the command can ask for all at once.
- Each prewarmed seat gets a *hold* until the class starts plus a grace period,
  kept by lens (``state/workshops/prewarm-holds.json``, written by root, never
  by a user request): the idle culler leaves the server alone until then, and
  the server's own idle shutdown is pushed back by as much.

This is the local hub's prewarm. On Kubernetes the same command plans z2jh's
user placeholders instead (jupyter_ext/workshop/placeholders.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jupyter_ext.workshop.statefile import write_private_json

HOLDS_FILE = "prewarm-holds.json"
DEFAULT_GRACE = timedelta(minutes=30)


def holds_path(state_root: Path | str) -> Path:
    return Path(state_root) / "workshops" / HOLDS_FILE


def read_holds(state_root: Path | str) -> dict[str, datetime]:
    """User -> the (naive UTC) time until which their server is held; {} when none."""
    try:
        raw = json.loads(holds_path(state_root).read_text())
    except (OSError, ValueError):
        return {}
    holds = {}
    for user, when in raw.items() if isinstance(raw, dict) else ():
        try:
            holds[str(user)] = datetime.fromisoformat(when)
        except (TypeError, ValueError):
            continue
    return holds


def write_holds(state_root: Path | str, holds: dict[str, datetime], now: datetime) -> None:
    """Merge these holds into the file, dropping any that have passed (0600, atomic)."""
    merged = {u: t for u, t in {**read_holds(state_root), **holds}.items() if t > now}
    write_private_json(holds_path(state_root), {u: t.isoformat() for u, t in sorted(merged.items())})


def held_seconds(hold_until: datetime | None, now: datetime) -> float:
    """Seconds a hold still has to run (0 when none or passed)."""
    return max(0.0, (hold_until - now).total_seconds()) if hold_until else 0.0


def held(user: str, state_root: Path | str | None = None, now: datetime | None = None) -> float:
    """Seconds ``user``'s server is still held (the culler's and the spawner's question)."""
    root = state_root or os.environ.get("LENS_STATE_DIR", "state")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return held_seconds(read_holds(root).get(user), now)


def prewarm(hub, seats: list[str], profile: str, *, timeout: float = 1800,
            on_progress: Callable[[int, int, int], None] | None = None) -> dict[str, str]:
    """Start the seats' servers (all requested at once; the hub paces them) and wait
    until each is ready or failed. Returns seat -> "ready" | "was running" | "failed: ...".
    ``hub`` is the CLI's HubAPI."""
    outcome: dict[str, str] = {}
    pending = []
    for seat in seats:
        servers = (hub.user(seat) or {}).get("servers", {})
        if servers.get("", {}).get("ready"):
            outcome[seat] = "was running"
            continue
        if not servers:
            status = hub.start_server(seat, {"profile": profile})
            if status not in (201, 202):
                outcome[seat] = f"failed: HTTP {status}"
                continue
        pending.append(seat)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for seat in pending:
            server = (hub.user(seat) or {}).get("servers", {}).get("")
            if server and server.get("ready"):
                outcome[seat] = "ready"
            elif server is None:
                outcome[seat] = "failed: the server stopped while starting (see the hub's log)"
            else:
                still.append(seat)
        pending = still
        if on_progress:
            on_progress(sum(v in ("ready", "was running") for v in outcome.values()), len(pending), len(seats))
        if pending:
            time.sleep(1.0)
    for seat in pending:
        outcome[seat] = f"failed: not ready after {timeout:.0f} s"
    return outcome
