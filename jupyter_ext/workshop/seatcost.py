"""Cost per seat from the spawners' start/stop meter events (integer micro-dollars).

Until the costs ledger is merged, a seat's server cost is the sum over its
start→stop intervals of the profile's hourly rate; a server still running is
counted up to `now`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

MICRO = 1_000_000


def interval_costs(events: list[tuple[str, str, str, float, datetime]], now: datetime) -> dict[str, int]:
    """events: (user, server, event, rate_usd_per_hour, at), in time order.
    Returns micro-dollars per user."""
    open_at: dict[tuple[str, str], tuple[datetime, float]] = {}
    total: dict[str, int] = {}

    def charge(user, start, end, rate):
        seconds = max(0.0, (end - start).total_seconds())
        total[user] = total.get(user, 0) + int(round(rate * MICRO * seconds / 3600))

    for user, server, event, rate, at in events:
        total.setdefault(user, 0)
        key = (user, server)
        if event == "start":
            if key in open_at:  # a missed stop: close the earlier interval here
                start, r = open_at.pop(key)
                charge(user, start, at, r)
            open_at[key] = (at, rate)
        elif event == "stop" and key in open_at:
            start, r = open_at.pop(key)
            charge(user, start, at, r)
    for (user, _server), (start, r) in open_at.items():
        charge(user, start, now, r)
    return total


def seat_costs(engine: sa.Engine, users: list[str], now: datetime) -> dict[str, int]:
    """Micro-dollars per seat (0 for seats that never ran a server)."""
    from ..db.tables import server_events as ev  # the engine reads the table, not the service

    if not users:
        return {}
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(ev.name):
            return dict.fromkeys(users, 0)
        rows = conn.execute(
            sa.select(ev.c.user, ev.c.server, ev.c.event, ev.c.rate_usd_per_hour, ev.c.at)
            .where(ev.c.user.in_(users))
            .order_by(ev.c.at, ev.c.id)
        ).all()
    costs = interval_costs([tuple(r) for r in rows], now)
    return {u: costs.get(u, 0) for u in users}
