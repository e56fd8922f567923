"""Budget gates for the three places that start spending: spawns, jobs, Dask clusters.

Thin, pure-ish helpers over ``Ledger`` so that the spawner's pre-spawn hook,
``POST /jobs`` and Dask cluster creation all enforce the same rule the same
way: estimate with the price catalog, then check (spawn, Dask: metered
afterwards) or hold (jobs: charged on completion). Each raises
``BudgetExceeded`` with a user-facing message.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ..constants import DASK, JOBS, SERVERS
from .budgets import HUB, check_account
from .catalog import PriceCatalog
from .ledger import Ledger
from .meter import Estimate, job_estimate
from .money import MICRO, dec, round_micro


def accounts_for(user: str, groups=()) -> list[str]:
    """The accounts a user's spending is charged to: the user, each group, and the hub."""
    return [check_account(f"user:{user}"), *(check_account(f"group:{g}") for g in sorted(set(groups)))]


def remaining(ledger: Ledger, accounts, now: datetime | None = None) -> int | None:
    """The least room left among the budgeted accounts (None: no budget applies)."""
    room = None
    for account in [*accounts, HUB]:
        s = ledger.summary(account, now)
        if s.available_micro is not None and not s.overridden:
            room = s.available_micro if room is None else min(room, s.available_micro)
    return room


def spawn_gate(ledger: Ledger, accounts, rate_usd_hour: Decimal | str, hours: Decimal | str = "1",
               catalog: PriceCatalog | None = None, now: datetime | None = None) -> Estimate:
    """Allow a server start only if ``hours`` of it fit every budget (no hold: servers are
    metered while they run). Raises ``BudgetExceeded``."""
    amount = round_micro(dec(rate_usd_hour, "rate_usd_hour") * MICRO * dec(hours, "hours"))
    ledger.check(accounts, amount, now)
    snap = catalog.info.as_dict() if catalog else {}
    return Estimate(amount, snap, {"rate_usd_hour": str(rate_usd_hour), "hours": str(hours),
                                   "remaining_micro": remaining(ledger, accounts, now)})


def spawn_hold(ledger: Ledger, accounts, rate_usd_hour: Decimal | str, ref: str,
               hours: Decimal | str = "1", category: str = SERVERS,
               catalog: PriceCatalog | None = None, now: datetime | None = None) -> tuple[int, Estimate]:
    """Like ``spawn_gate`` but race-safe: hold ``hours`` of the rate, so that N concurrent
    starts against a budget that fits k accept exactly k. Pass the hold id to
    ``UsageMeter.start(..., hold_id=)``, which releases it when metering begins; release
    it yourself (``ledger.release``) if the start fails."""
    amount = round_micro(dec(rate_usd_hour, "rate_usd_hour") * MICRO * dec(hours, "hours"))
    hold_id = ledger.hold(accounts, amount, category, ref, f"start gate: {hours} h", now)
    snap = catalog.info.as_dict() if catalog else {}
    return hold_id, Estimate(amount, snap, {"rate_usd_hour": str(rate_usd_hour), "hours": str(hours)})


def dask_gate(ledger: Ledger, accounts, worker_rate_usd_hour, max_workers: int,
              hours: Decimal | str = "1", scheduler_rate_usd_hour="0",
              catalog: PriceCatalog | None = None, now: datetime | None = None) -> Estimate:
    """Allow a Dask cluster if ``hours`` at its maximum size fit. Raises ``BudgetExceeded``."""
    if max_workers < 0:
        raise ValueError("max_workers: must be >= 0")
    rate = dec(worker_rate_usd_hour, "worker_rate_usd_hour") * max_workers + dec(
        scheduler_rate_usd_hour, "scheduler_rate_usd_hour")
    return spawn_gate(ledger, accounts, rate, hours, catalog, now)


def job_hold(ledger: Ledger, catalog: PriceCatalog, accounts, instance_type: str, nodes: int,
             walltime_seconds: int, ref: str, region: str | None = None, market: str = "on-demand",
             description: str = "", now: datetime | None = None) -> tuple[int, Estimate]:
    """Hold walltime x nodes x rate for a job; charge the actual with ``ledger.charge`` when
    it ends (``meter.job_cost``), or ``ledger.release`` if it never ran."""
    est = job_estimate(catalog, instance_type, nodes, walltime_seconds, region, market)
    hold_id = ledger.hold(accounts, est.amount_micro, JOBS, ref,
                          description or f"{nodes} x {instance_type}, {walltime_seconds}s", now)
    return hold_id, est


def dask_hold(ledger: Ledger, accounts, worker_rate_usd_hour, max_workers: int, ref: str,
              hours: Decimal | str = "1", scheduler_rate_usd_hour="0",
              catalog: PriceCatalog | None = None, now: datetime | None = None) -> tuple[int, Estimate]:
    """Race-safe ``dask_gate``: hold ``hours`` at the cluster's maximum size; hand the hold id
    to ``UsageMeter.start(..., hold_id=)`` for the cluster ref."""
    if max_workers < 0:
        raise ValueError("max_workers: must be >= 0")
    rate = dec(worker_rate_usd_hour, "worker_rate_usd_hour") * max_workers + dec(
        scheduler_rate_usd_hour, "scheduler_rate_usd_hour")
    return spawn_hold(ledger, accounts, rate, ref, hours, DASK, catalog, now)
