"""Persisted usage intervals, accrued incrementally into the ledger.

A user server, a Dask cluster or a stored archive opens an interval with a
rate (USD/hour, exact decimal). ``accrue()`` books what has run since the last
accrual; each accrual books ``cost(start -> now) - already booked``, so the
sum is exact however often it runs, and the interval row and its ledger
entries are written in one transaction, so a hub restart loses or doubles
nothing. ``start`` is idempotent per ref (a restarted hub re-reporting a
running server does not open a second interval); ``stop`` closes the interval
and, for storage, books the early-deletion fee for the rest of its minimum
duration.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, select

from ..constants import DASK, JOBS, SERVERS, STORAGE
from . import db
from .budgets import check_category, naive, utc
from .ledger import Ledger, _accounts
from .meter import cost_for_seconds
from .money import dec

# How often an open interval is booked at most: often enough to block a budget in time,
# rarely enough that a month of a long-lived archive is not 40,000 journal rows.
DEFAULT_STEP_SECONDS = {SERVERS: 300, DASK: 60, JOBS: 300, STORAGE: 3600}


def server_ref(user: str, server: str = "") -> str:
    """The ref of a user server in holds and intervals: ``server:USER/NAME`` ('' is the default)."""
    return f"server:{user}/{server}"


def parse_server_ref(ref: str) -> tuple[str, str] | None:
    """``server:USER/NAME`` -> (user, server name); None for any other ref."""
    kind, _, rest = ref.partition(":")
    user, sep, server = rest.partition("/")
    return (user, server) if kind == "server" and user and sep else None


def _seconds(a: datetime, b: datetime) -> Decimal:
    return max(Decimal(0), Decimal(str((utc(b) - utc(a)).total_seconds())))


class UsageMeter:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def _open(self, conn, ref: str):
        return conn.execute(select(db.intervals).where(and_(
            db.intervals.c.ref == ref, db.intervals.c.stopped_at.is_(None))).with_for_update()).first()

    def start(self, ref: str, category: str, accounts, rate_usd_hour, at: datetime | None = None,
              min_seconds: int = 0, snapshot: dict | None = None, detail: dict | None = None,
              step_seconds: int | None = None, hold_id: int | None = None) -> int:
        """Open an interval for ``ref`` (or return the one already open). ``accrue`` books it
        at most every ``step_seconds`` (default by category, ``DEFAULT_STEP_SECONDS``);
        ``stop`` always books it to the end.

        ``hold_id``: the hold the start gate placed (``gate.spawn_hold``). It keeps the
        budget reserved until metering takes over, and is released at the first booking,
        so concurrent starts cannot all squeeze through the same remaining budget."""
        check_category(category)
        accounts = _accounts(accounts)
        rate = dec(rate_usd_hour, "rate_usd_hour")
        if rate < 0:
            raise ValueError("rate_usd_hour: must be >= 0")
        at = utc(at)
        with self.ledger.transaction() as conn:
            row = self._open(conn, ref)
            if row is not None:
                if hold_id is not None:  # already metered (a restarted hub re-reporting it)
                    self.ledger.release(hold_id, at, conn=conn, missing_ok=True)
                return int(row.id)
            detail = {**(detail or {}), **({"hold_id": int(hold_id)} if hold_id is not None else {})}
            return int(conn.execute(db.intervals.insert().values(
                ref=ref, category=category, accounts=json.dumps(accounts), rate_usd_hour=str(rate),
                started_at=naive(at), accrued_micro=0, accrued_until=naive(at),
                min_seconds=int(min_seconds), snapshot=json.dumps(snapshot or {}),
                step_seconds=int(DEFAULT_STEP_SECONDS[category] if step_seconds is None else step_seconds),
                detail=json.dumps(detail))).inserted_primary_key[0])

    def _accrue_row(self, conn, row, until: datetime) -> int:
        until = max(utc(until), utc(row.accrued_until))
        total = cost_for_seconds(row.rate_usd_hour, _seconds(row.started_at, until))
        delta = total - int(row.accrued_micro)
        hold_id = json.loads(row.detail).get("hold_id")
        if hold_id is not None:  # metering takes over from the start gate hold
            self.ledger.release(hold_id, until, conn=conn, missing_ok=True)
        if delta > 0:
            self.ledger.record(json.loads(row.accounts), delta, row.category, row.ref, until, conn=conn)
        conn.execute(db.intervals.update().where(db.intervals.c.id == row.id).values(
            accrued_micro=max(total, int(row.accrued_micro)), accrued_until=naive(until)))
        return max(delta, 0)

    def accrue(self, now: datetime | None = None) -> int:
        """Book every open interval up to ``now``; returns the micro-dollars booked."""
        now, booked = utc(now), 0
        with self.ledger.transaction() as conn:
            rows = conn.execute(select(db.intervals).where(db.intervals.c.stopped_at.is_(None))
                                .order_by(db.intervals.c.id).with_for_update()).all()
            for row in rows:
                if _seconds(row.accrued_until, now) >= (row.step_seconds or 0):
                    booked += self._accrue_row(conn, row, now)
        return booked

    def stop(self, ref: str, at: datetime | None = None) -> int | None:
        """Close the open interval of ``ref`` at ``at``; returns its total cost, None if none open."""
        at = utc(at)
        with self.ledger.transaction() as conn:
            row = self._open(conn, ref)
            if row is None:
                return None
            self._accrue_row(conn, row, at)
            row = conn.execute(select(db.intervals).where(db.intervals.c.id == row.id)).first()
            total = int(row.accrued_micro)
            ran = _seconds(row.started_at, row.accrued_until)
            if row.min_seconds and ran < row.min_seconds:
                fee = cost_for_seconds(row.rate_usd_hour, Decimal(row.min_seconds)) - total
                if fee > 0:
                    self.ledger.record(json.loads(row.accounts), fee, row.category,
                                       f"{ref}#early-deletion", at, conn=conn)
                    total += fee
            conn.execute(db.intervals.update().where(db.intervals.c.id == row.id).values(
                stopped_at=naive(max(at, utc(row.accrued_until))), accrued_micro=total))
            return total

    def rescale(self, ref: str, rate_usd_hour, at: datetime | None = None) -> int:
        """Change the rate of a running ref (a Dask cluster scaling): close and reopen."""
        at = utc(at)
        with self.ledger.reader.connect() as conn:
            row = conn.execute(select(db.intervals).where(and_(
                db.intervals.c.ref == ref, db.intervals.c.stopped_at.is_(None)))).first()
        if row is None:
            raise ValueError(f"ref: {ref!r} has no open interval")
        self.stop(ref, at)
        return self.start(ref, row.category, json.loads(row.accounts), rate_usd_hour, at,
                          snapshot=json.loads(row.snapshot), detail=json.loads(row.detail),
                          step_seconds=row.step_seconds)

    def close_stale(self, running_refs, at: datetime | None = None, category: str | None = None) -> list[str]:
        """Stop open intervals whose ref is no longer running (a stop event lost with a
        hub restart or a network error); they are charged up to ``at`` (default: now)."""
        running = set(running_refs)
        stale = [r["ref"] for r in self.open_intervals(category) if r["ref"] not in running]
        for ref in stale:
            self.stop(ref, at)
        return stale

    def open_intervals(self, category: str | None = None) -> list[dict]:
        query = select(db.intervals).where(db.intervals.c.stopped_at.is_(None))
        if category:
            query = query.where(db.intervals.c.category == check_category(category))
        with self.ledger.reader.connect() as conn:
            return [self._row(r) for r in conn.execute(query.order_by(db.intervals.c.id))]

    def intervals(self, ref: str) -> list[dict]:
        with self.ledger.reader.connect() as conn:
            rows = conn.execute(select(db.intervals).where(db.intervals.c.ref == ref)
                                .order_by(db.intervals.c.id))
            return [self._row(r) for r in rows]

    @staticmethod
    def _row(r) -> dict:
        return {"id": r.id, "ref": r.ref, "category": r.category, "accounts": json.loads(r.accounts),
                "rate_usd_hour": r.rate_usd_hour, "started_at": utc(r.started_at),
                "stopped_at": utc(r.stopped_at) if r.stopped_at else None,
                "accrued_micro": int(r.accrued_micro), "accrued_until": utc(r.accrued_until),
                "snapshot": json.loads(r.snapshot), "detail": json.loads(r.detail)}


def over_limit_refs(meter: UsageMeter, category: str = SERVERS, now: datetime | None = None) -> list[str]:
    """Open intervals (e.g. running servers) charged to an account that is at 100 % with no
    override: what to stop when ``CostsSettings.stop_servers_at_limit`` is on."""
    out, cache = [], {}
    for row in meter.open_intervals(category):
        blocked = False
        for account in row["accounts"]:
            if account not in cache:
                cache[account] = meter.ledger.summary(account, now).blocked
            blocked = blocked or cache[account]
        if blocked:
            out.append(row["ref"])
    return out


def release_orphan_holds(ledger: Ledger, live_refs, older_than_seconds: float, category: str = SERVERS,
                         now: datetime | None = None) -> list[int]:
    """Release start-gate holds whose server is neither running nor starting.

    A spawner releases its hold when a start fails, and metering takes it over
    when the start succeeds; a hub that died in between leaves the hold open,
    reserving budget for nothing. ``live_refs``: the refs of every server the hub
    has running or pending. Only holds older than ``older_than_seconds`` (longer
    than any start may take) are touched."""
    live, now = set(live_refs), utc(now)
    cutoff = naive(now - timedelta(seconds=older_than_seconds))
    with ledger.reader.connect() as conn:
        rows = conn.execute(select(db.holds.c.id, db.holds.c.ref).where(and_(
            db.holds.c.status == "open", db.holds.c.category == check_category(category),
            db.holds.c.created_at < cutoff)).order_by(db.holds.c.id)).all()
    orphans = [int(r.id) for r in rows if r.ref not in live]
    for hold_id in orphans:
        ledger.release(hold_id, now, missing_ok=True)  # missing_ok: taken over meanwhile
    return orphans


async def accrue_forever(meter: UsageMeter, interval: float, log=None) -> None:
    """Accrue every ``interval`` seconds until cancelled (run it as a service task).
    The database work runs in a thread so the event loop stays responsive."""
    import asyncio

    while True:
        try:
            await asyncio.to_thread(meter.accrue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep metering through transient DB errors
            if log is not None:
                log.warning("costs accrual failed: %s", exc)
        await asyncio.sleep(interval)
