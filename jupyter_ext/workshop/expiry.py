"""Expiry decisions (pure): which running servers must stop, and why."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..accounts import Account


def servers_to_stop(
    active_users: Iterable[str], accounts: dict[str, Account], now: datetime
) -> dict[str, str]:
    """Among users with a running server, the ones whose account expired or was
    disabled (workshop seats, or any temporary account), with the reason."""
    stop = {}
    for name in active_users:
        account = accounts.get(name)
        if account is None:
            continue
        if account.disabled:
            stop[name] = "account disabled"
        elif account.expired(now):
            stop[name] = f"account expired at {account.expires_at:%Y-%m-%d %H:%M} UTC"
    return stop


def refusal(workshops, now: datetime) -> str | None:
    """Why a member of these workshops may not start a server (None: they may).
    A user in several workshops may spawn while any of them is open."""
    workshops = list(workshops)
    if not workshops or any(ws.active(now) for ws in workshops):
        return None
    ws = workshops[0]
    if ws.closed_at is not None:
        return f"The workshop {ws.name!r} has been closed."
    return f"The workshop {ws.name!r} ended on {ws.expires_at:%Y-%m-%d %H:%M} UTC."


def allowed_profiles(workshops, now: datetime) -> set[str] | None:
    """Profiles the open workshops allow (union); None means no restriction
    (the user belongs to no workshop, or one that allows every profile)."""
    open_ws = [ws for ws in workshops if ws.active(now)]
    if not open_ws:
        return None
    if any(not ws.profiles for ws in open_ws):
        return None
    return {p for ws in open_ws for p in ws.profiles}
