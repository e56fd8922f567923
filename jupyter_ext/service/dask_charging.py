"""Charge Dask worker time to the ledger exactly once, across service restarts.

The gateway's usage snapshot lists every worker's start and stop time (ms, the
gateway's clock) and its ``now``. A persisted watermark (``lens_meter_watermarks``,
source ``dask``) says up to when worker time has been charged. ``charge`` reads
the watermark, books the worker time in ``[watermark, snapshot now)`` and moves
the watermark, all in one ledger write transaction. Either both happen or
neither does (a crash, a kill, a database error), so:

- a restart loses nothing: the first window after it starts at the old
  watermark and covers the time the service was down (as long as the gateway
  still remembers the clusters: ``db_cluster_max_age``, 24 h by default);
- nothing is charged twice: the watermark is read under the ledger's write
  lock (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on
  PostgreSQL), so a second service instance on the same database finds it
  already moved and books only what is left. Windows are disjoint, so every
  interval ref (``dask:CLUSTER/WORKER:START-END``) is unique.

No Jupyter imports: only SQLAlchemy and the costs engine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from ..constants import DASK
from ..costs.ledger import Ledger
from ..db.migrate import ensure_schema
from ..gateway.metering import Rates, UsageInterval, usage_intervals
from .db import meter_watermarks

SOURCE = "dask"
CATEGORY = DASK


def interval_ref(iv: UsageInterval) -> str:
    """The ledger ref of one worker's interval (unique: windows never overlap)."""
    return f"dask:{iv.cluster}/{iv.worker}:{iv.start_ms}-{iv.end_ms}"


def plan(snapshot: Mapping, watermark_ms: int, rates: Rates) -> tuple[list[UsageInterval], int]:
    """Intervals to charge after ``watermark_ms`` and the watermark that follows them.

    The watermark never moves back (a gateway clock behind it charges nothing).
    Intervals that round to zero micro-USD (under ~40 ms at the default rate)
    are dropped; their time is not carried over.
    """
    until = int(snapshot["now"])
    if until <= watermark_ms:
        return [], watermark_ms
    intervals = usage_intervals(snapshot, watermark_ms, until, rates)
    return [iv for iv in intervals if iv.cost_microusd > 0], until


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def read_watermark(conn: sa.Connection, source: str = SOURCE, lock: bool = False) -> int | None:
    query = sa.select(meter_watermarks.c.until_ms).where(meter_watermarks.c.source == source)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return None if row is None else int(row[0])


def write_watermark(conn: sa.Connection, source: str, until_ms: int) -> None:
    values = {"until_ms": int(until_ms), "updated_at": _now()}
    done = conn.execute(
        meter_watermarks.update().where(meter_watermarks.c.source == source).values(**values)
    ).rowcount
    if not done:
        conn.execute(meter_watermarks.insert().values(source=source, **values))


def ensure_tables(engine: sa.Engine) -> None:
    """The watermark must live in the ledger's database (one transaction for both)."""
    ensure_schema(engine)


def current_watermark(ledger: Ledger, source: str = SOURCE) -> int | None:
    with ledger.reader.connect() as conn:
        return read_watermark(conn, source)


def start_watermark(ledger: Ledger, now_ms: int | None = None, source: str = SOURCE) -> int:
    """The watermark, set to now if there is none yet (first start: charge from now on)."""
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    with ledger.transaction() as conn:
        current = read_watermark(conn, source, lock=True)
        if current is not None:
            return current
        write_watermark(conn, source, now_ms)
        return now_ms


def users_to_charge(snapshot: Mapping, watermark_ms: int | None, rates: Rates) -> set[str]:
    """Whose accounts the next charge needs (look their groups up before charging)."""
    if watermark_ms is None:
        return set()
    return {iv.user for iv in plan(snapshot, watermark_ms, rates)[0]}


@dataclass
class ChargeResult:
    since_ms: int | None
    until_ms: int
    intervals: list[UsageInterval] = field(default_factory=list)

    @property
    def total_microusd(self) -> int:
        return sum(iv.cost_microusd for iv in self.intervals)


def charge(
    ledger: Ledger,
    snapshot: Mapping,
    rates: Rates,
    accounts_of: Mapping[str, list[str]],
    source: str = SOURCE,
) -> ChargeResult:
    """Book the snapshot's worker time after the watermark and move it, atomically.

    ``accounts_of`` maps each user of ``users_to_charge`` to their ledger
    accounts. Without a watermark yet, it is set to the snapshot's ``now`` and
    nothing is charged.
    """
    with ledger.transaction() as conn:
        since = read_watermark(conn, source, lock=True)
        if since is None:
            write_watermark(conn, source, int(snapshot["now"]))
            return ChargeResult(None, int(snapshot["now"]))
        intervals, until = plan(snapshot, since, rates)
        missing = sorted({iv.user for iv in intervals} - set(accounts_of))
        if missing:  # the watermark only moves forward, so this is a caller's bug
            raise RuntimeError(f"no ledger accounts given for user(s) {', '.join(missing)}")
        for iv in intervals:
            ledger.record(accounts_of[iv.user], iv.cost_microusd, CATEGORY, interval_ref(iv), conn=conn)
        if until != since:
            write_watermark(conn, source, until)
        return ChargeResult(since, until, intervals)
