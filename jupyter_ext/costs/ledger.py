"""The ledger: hold -> charge -> refund, in integer micro-dollars.

For every budgeted account and period, ``budget = available + held + spent``:
a hold moves money from available to held, a charge from held to spent (the
unused rest is refunded to available), a release returns a hold whole, and a
record books metered usage straight to spent. Holds are refused with
``BudgetExceeded`` when any budgeted account lacks room, unless an admin
override is active. Accounts without a budget are unlimited but recorded.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..db.migrate import ensure_schema
from . import db
from .budgets import (
    DEFAULT_THRESHOLDS,
    HUB,
    AccountSummary,
    Budget,
    check_account,
    check_category,
    crossed,
    naive,
    period_for,
    utc,
    validate_budget,
)
from .money import usd
from .notify import BudgetEvent, LogNotifier, dispatch


class BudgetExceeded(Exception):
    """A hold or check that does not fit an account's remaining budget."""

    def __init__(self, account: str, estimate_micro: int, remaining_micro: int,
                 budget_micro: int, period_key: str, reason: str = ""):
        self.account = account
        self.estimate_micro = estimate_micro
        self.remaining_micro = remaining_micro
        self.budget_micro = budget_micro
        self.period_key = period_key
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = (
            f"Budget of {self.account} is not enough: this needs about {usd(self.estimate_micro)}, "
            f"but only {usd(max(self.remaining_micro, 0))} of {usd(self.budget_micro)} remains "
            f"for {self.period_key}."
        )
        if self.reason:
            text += f" {self.reason}"
        return text + " Choose something smaller, or ask an admin to raise the budget or override."

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": "budget_exceeded", "message": self.message, "account": self.account,
            "estimate_micro": self.estimate_micro, "remaining_micro": max(self.remaining_micro, 0),
            "budget_micro": self.budget_micro, "period": self.period_key,
        }


class HoldError(ValueError):
    """Unknown hold id, or a hold already charged or released."""


def _int_micro(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field}: must be an int of micro-dollars, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{field}: must be >= 0")
    return value


def _accounts(accounts) -> list[str]:
    if isinstance(accounts, str):
        accounts = [accounts]
    return sorted({check_account(a) for a in accounts} | {HUB})


def _budget_from_row(row) -> Budget:
    return Budget(
        account=row.account, amount_micro=int(row.amount_micro), period=row.period,
        start=utc(row.start) if row.start else None, end=utc(row.end) if row.end else None,
        thresholds=tuple(int(t) for t in row.thresholds.split(",") if t),
        override_until=utc(row.override_until) if row.override_until else None,
        override_by=row.override_by, override_reason=row.override_reason or "",
    )


_INSERT_ENTRY = db.entries.insert()
_SELECT_BALANCE = select(db.balances.c.held_micro, db.balances.c.spent_micro).where(and_(
    db.balances.c.account == bindparam("account"), db.balances.c.period_key == bindparam("period_key")))

_SELECT_BUDGETS = select(db.budgets).where(
    db.budgets.c.account.in_(bindparam("accounts", expanding=True))).order_by(db.budgets.c.account)
_SELECT_BUDGETS_LOCK = _SELECT_BUDGETS.with_for_update()
_SELECT_ALERTS = select(db.alerts.c.threshold).where(and_(
    db.alerts.c.account == bindparam("account"), db.alerts.c.period_key == bindparam("period_key")))


class Ledger:
    """``Ledger(engine)``; make the engine with ``db.make_engine(url)`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, notifiers=()):
        self.engine = db.configure_engine(engine)
        # Reads take a plain (deferred) transaction: on SQLite they neither wait for nor
        # block the writer. Writes go through ``transaction()`` (BEGIN IMMEDIATE).
        self.reader = engine.execution_options(lens_readonly=True)
        self.writer = engine.execution_options(lens_immediate=True)
        ensure_schema(engine)
        self.notifiers = [LogNotifier(), *notifiers]
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(db.balances)
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[db.balances.c.account, db.balances.c.period_key],
            set_={"held_micro": db.balances.c.held_micro + stmt.excluded.held_micro,
                  "spent_micro": db.balances.c.spent_micro + stmt.excluded.spent_micro})

    # -- plumbing ---------------------------------------------------------------
    @contextmanager
    def transaction(self):
        """A write transaction (BEGIN IMMEDIATE on SQLite). Budget events are sent after commit."""
        events: list[BudgetEvent] = []
        with db.write_lock(self.engine), self.writer.begin() as conn:
            conn.info["lens_events"] = events
            try:
                yield conn
            finally:
                conn.info.pop("lens_events", None)
        dispatch(self.notifiers, events)

    def _budgets(self, conn: Connection, accounts, lock: bool) -> dict[str, Budget]:
        query = _SELECT_BUDGETS_LOCK if lock else _SELECT_BUDGETS
        rows = conn.execute(query, {"accounts": sorted(accounts)})
        return {row.account: _budget_from_row(row) for row in rows}

    def _balance(self, conn: Connection, account: str, period_key: str) -> tuple[int, int]:
        row = conn.execute(_SELECT_BALANCE, {"account": account, "period_key": period_key}).first()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @staticmethod
    def _entry(at: datetime, account: str, period_key: str, kind: str, category: str, ref: str,
               hold_id: int | None, held: int, spent: int) -> dict:
        return {"at": naive(at), "account": account, "period_key": period_key, "kind": kind,
                "category": category, "ref": ref, "hold_id": hold_id, "held_delta": held,
                "spent_delta": spent}

    def _post(self, conn: Connection, rows: list[dict]) -> None:
        """Append journal entries and move the cached balances, in two executemany calls."""
        if not rows:
            return
        conn.execute(_INSERT_ENTRY, rows)
        moved: dict[tuple[str, str], list[int]] = {}
        for r in rows:
            m = moved.setdefault((r["account"], r["period_key"]), [0, 0])
            m[0] += r["held_delta"]
            m[1] += r["spent_delta"]
        conn.execute(self._upsert, [{"account": a, "period_key": k, "held_micro": h, "spent_micro": sp}
                                    for (a, k), (h, sp) in sorted(moved.items())])  # lock order

    def _room(self, conn, budgets: dict[str, Budget], accounts, amount: int, now) -> None:
        for account in accounts:
            budget = budgets.get(account)
            if budget is None or budget.overridden(now):
                continue
            period = period_for(budget, now)
            funded = budget.amount_micro if period.funded else 0
            held, spent = self._balance(conn, account, period.key)
            available = funded - held - spent
            if amount > available:
                reason = "" if period.funded else "The budget's window is not open now."
                raise BudgetExceeded(account, amount, available, funded, period.key, reason)

    def _check_alerts(self, conn: Connection, budgets: dict[str, Budget], touched, now) -> None:
        events = conn.info.get("lens_events")
        for account, period_key in touched:
            budget = budgets.get(account)
            if budget is None:
                continue
            unfunded = period_key.startswith(("before:", "after:"))
            funded = 0 if unfunded else budget.amount_micro
            _, spent = self._balance(conn, account, period_key)
            if not crossed(budget.thresholds, spent, funded, set()):
                continue  # below every threshold: no need to look up what was sent
            done = {int(r[0]) for r in conn.execute(
                _SELECT_ALERTS, {"account": account, "period_key": period_key})}
            for threshold in crossed(budget.thresholds, spent, funded, done):
                conn.execute(db.alerts.insert().values(
                    account=account, period_key=period_key, threshold=threshold, at=naive(now)))
                if events is not None:
                    events.append(BudgetEvent(account, threshold, spent, funded, period_key,
                                              utc(now).isoformat()))

    # -- budgets -----------------------------------------------------------------
    def set_budget(self, account: str, amount_micro: int, period: str = "monthly",
                   start: datetime | None = None, end: datetime | None = None,
                   thresholds=DEFAULT_THRESHOLDS, now: datetime | None = None) -> Budget:
        b = validate_budget(account, amount_micro, period, start, end, thresholds)
        values = dict(
            amount_micro=b.amount_micro, period=b.period,
            start=naive(b.start) if b.start else None, end=naive(b.end) if b.end else None,
            thresholds=",".join(map(str, b.thresholds)), updated_at=naive(utc(now)))
        with self.transaction() as conn:
            existing = self._budgets(conn, [account], lock=True)
            if existing:
                conn.execute(db.budgets.update().where(db.budgets.c.account == account).values(**values))
            else:
                conn.execute(db.budgets.insert().values(account=account, override_reason="", **values))
            return self._budgets(conn, [account], lock=False)[account]

    def remove_budget(self, account: str) -> bool:
        with self.transaction() as conn:
            return conn.execute(db.budgets.delete().where(db.budgets.c.account == account)).rowcount > 0

    def get_budget(self, account: str) -> Budget | None:
        with self.reader.connect() as conn:
            return self._budgets(conn, [check_account(account)], lock=False).get(account)

    def budgets(self) -> list[Budget]:
        with self.reader.connect() as conn:
            rows = conn.execute(select(db.budgets).order_by(db.budgets.c.account))
            return [_budget_from_row(r) for r in rows]

    def override(self, account: str, by: str, until: datetime | None = None, reason: str = "",
                 now: datetime | None = None) -> Budget:
        """Let ``account`` spend past 100 % until ``until`` (default: end of its current period)."""
        now = utc(now)
        with self.transaction() as conn:
            budget = self._budgets(conn, [check_account(account)], lock=True).get(account)
            if budget is None:
                raise ValueError(f"account: {account!r} has no budget to override")
            until = utc(until) if until else period_for(budget, now).end
            if until <= now:
                raise ValueError("until: must be in the future")
            conn.execute(db.budgets.update().where(db.budgets.c.account == account).values(
                override_until=naive(until), override_by=by, override_reason=reason))
            return self._budgets(conn, [account], lock=False)[account]

    def clear_override(self, account: str) -> None:
        with self.transaction() as conn:
            conn.execute(db.budgets.update().where(db.budgets.c.account == account).values(
                override_until=None, override_by=None, override_reason=""))

    # -- money movements -----------------------------------------------------------
    def check(self, accounts, amount_micro: int, now: datetime | None = None) -> None:
        """Raise ``BudgetExceeded`` if ``amount_micro`` does not fit; hold nothing."""
        accounts, now = _accounts(accounts), utc(now)
        amount = _int_micro(amount_micro, "amount_micro")
        with self.reader.connect() as conn:
            self._room(conn, self._budgets(conn, accounts, lock=False), accounts, amount, now)

    def hold(self, accounts, amount_micro: int, category: str, ref: str, description: str = "",
             now: datetime | None = None) -> int:
        accounts, now = _accounts(accounts), utc(now)
        amount = _int_micro(amount_micro, "amount_micro")
        check_category(category)
        with self.transaction() as conn:
            budgets = self._budgets(conn, accounts, lock=True)
            self._room(conn, budgets, accounts, amount, now)
            hold_id = conn.execute(db.holds.insert().values(
                category=category, ref=str(ref), description=description, amount_micro=amount,
                status="open", created_at=naive(now))).inserted_primary_key[0]
            self._post(conn, [
                self._entry(now, a, period_for(budgets.get(a), now).key, "hold", category, str(ref),
                            hold_id, amount, 0) for a in accounts])
            return int(hold_id)

    def _open_hold(self, conn: Connection, hold_id: int):
        hold = conn.execute(select(db.holds).where(db.holds.c.id == hold_id).with_for_update()).first()
        if hold is None:
            raise HoldError(f"hold_id: no hold {hold_id}")
        if hold.status != "open":
            raise HoldError(f"hold_id: hold {hold_id} is already {hold.status}")
        posted = conn.execute(select(db.entries.c.account, db.entries.c.period_key).where(and_(
            db.entries.c.hold_id == hold_id, db.entries.c.kind == "hold"))
            .order_by(db.entries.c.account)).all()
        return hold, [(r.account, r.period_key) for r in posted]

    def charge(self, hold_id: int, actual_micro: int, now: datetime | None = None) -> dict:
        """Charge the actual cost of a hold and refund the rest (an overrun is charged whole)."""
        actual, now = _int_micro(actual_micro, "actual_micro"), utc(now)
        with self.transaction() as conn:
            hold, posted = self._open_hold(conn, hold_id)
            budgets = self._budgets(conn, [a for a, _ in posted], lock=True)
            held = int(hold.amount_micro)
            covered = min(actual, held)
            rows = []
            for account, key in posted:
                rows.append(self._entry(now, account, key, "charge", hold.category, hold.ref,
                                        hold_id, -covered, actual))
                if held > covered:
                    rows.append(self._entry(now, account, key, "refund", hold.category, hold.ref,
                                            hold_id, -(held - covered), 0))
            self._post(conn, rows)
            conn.execute(db.holds.update().where(db.holds.c.id == hold_id).values(
                status="charged", actual_micro=actual, closed_at=naive(now)))
            self._check_alerts(conn, budgets, posted, now)
        return {"hold_id": hold_id, "charged_micro": actual, "refunded_micro": held - covered}

    def release(self, hold_id: int, now: datetime | None = None, conn: Connection | None = None,
                missing_ok: bool = False) -> None:
        """Return a hold whole (the work never ran, or metering took over).
        ``missing_ok``: do nothing if it is already closed."""
        now = utc(now)
        if conn is None:
            with self.transaction() as conn:
                return self.release(hold_id, now, conn, missing_ok)
        try:
            hold, posted = self._open_hold(conn, hold_id)
        except HoldError:
            if missing_ok:
                return None
            raise
        self._post(conn, [
            self._entry(now, account, key, "release", hold.category, hold.ref, hold_id,
                        -int(hold.amount_micro), 0) for account, key in posted])
        conn.execute(db.holds.update().where(db.holds.c.id == hold_id).values(
            status="released", actual_micro=0, closed_at=naive(now)))
        return None

    def record(self, accounts, amount_micro: int, category: str, ref: str,
               now: datetime | None = None, conn: Connection | None = None) -> None:
        """Book metered usage (it has happened, so it is never refused)."""
        if conn is None:
            with self.transaction() as conn:
                return self.record(accounts, amount_micro, category, ref, now, conn)
        accounts, now = _accounts(accounts), utc(now)
        amount = _int_micro(amount_micro, "amount_micro")
        check_category(category)
        if amount == 0:
            return None
        budgets = self._budgets(conn, accounts, lock=True)
        touched = [(a, period_for(budgets.get(a), now).key) for a in accounts]
        self._post(conn, [self._entry(now, a, key, "record", category, str(ref), None, 0, amount)
                          for a, key in touched])
        self._check_alerts(conn, budgets, touched, now)
        return None

    # -- queries --------------------------------------------------------------------
    def get_hold(self, hold_id: int) -> dict | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(db.holds).where(db.holds.c.id == hold_id)).first()
            return dict(row._mapping) if row else None

    def summary(self, account: str, now: datetime | None = None) -> AccountSummary:
        account, now = check_account(account), utc(now)
        with self.reader.connect() as conn:
            budget = self._budgets(conn, [account], lock=False).get(account)
            period = period_for(budget, now)
            held, spent = self._balance(conn, account, period.key)
            by_cat = dict(conn.execute(
                select(db.entries.c.category, func.sum(db.entries.c.spent_delta)).where(and_(
                    db.entries.c.account == account, db.entries.c.period_key == period.key))
                .group_by(db.entries.c.category)).all())
        funded = None if budget is None else (budget.amount_micro if period.funded else 0)
        return AccountSummary(
            account, period, funded, held, spent, {k: int(v) for k, v in by_cat.items()},
            overridden=bool(budget and budget.overridden(now)),
            thresholds=budget.thresholds if budget else DEFAULT_THRESHOLDS)

    def active_alerts(self, accounts=None, now: datetime | None = None) -> list[BudgetEvent]:
        """Per budgeted account (all, or those in ``accounts``): the highest threshold
        notified in its current period that its spending still stands at.

        This is what a banner shows: an alert stops showing when the period rolls over
        or an admin raises the budget above the spending.
        """
        now = utc(now)
        with self.reader.connect() as conn:
            if accounts is None:
                budgets = [_budget_from_row(r) for r in conn.execute(select(db.budgets))]
            else:
                budgets = list(self._budgets(conn, _accounts(accounts), lock=False).values())
            out = []
            for budget in sorted(budgets, key=lambda b: b.account):
                period = period_for(budget, now)
                if not period.funded:
                    continue
                sent = {int(r.threshold): r.at for r in conn.execute(
                    select(db.alerts.c.threshold, db.alerts.c.at).where(and_(
                        db.alerts.c.account == budget.account, db.alerts.c.period_key == period.key)))}
                if not sent:
                    continue
                _, spent = self._balance(conn, budget.account, period.key)
                standing = crossed(sent, spent, budget.amount_micro, set())
                if standing:
                    top = max(standing)
                    out.append(BudgetEvent(budget.account, top, spent, budget.amount_micro, period.key,
                                           utc(sent[top]).isoformat()))
        return out

    def blocked_accounts(self, accounts, now: datetime | None = None) -> list[str]:
        """Accounts among ``accounts`` at or past 100 % with no override."""
        return [a for a in _accounts(accounts) if self.summary(a, now).blocked]

    def is_blocked(self, accounts, now: datetime | None = None) -> bool:
        return bool(self.blocked_accounts(accounts, now))

    def accounts(self) -> list[str]:
        with self.reader.connect() as conn:
            seen = {r[0] for r in conn.execute(select(db.balances.c.account).distinct())}
            seen |= {r[0] for r in conn.execute(select(db.budgets.c.account))}
        return sorted(seen)

    def spend_rows(self, start: datetime, end: datetime, accounts=None) -> list[dict]:
        """Entries that moved money to ``spent`` in ``[start, end)``, oldest first."""
        query = select(db.entries.c.at, db.entries.c.account, db.entries.c.category,
                       db.entries.c.ref, db.entries.c.kind, db.entries.c.spent_delta).where(and_(
            db.entries.c.spent_delta != 0, db.entries.c.at >= naive(start),
            db.entries.c.at < naive(end)))
        if accounts is not None:
            query = query.where(db.entries.c.account.in_(list(accounts)))
        with self.reader.connect() as conn:
            rows = conn.execute(query.order_by(db.entries.c.at, db.entries.c.id)).all()
        return [{"at": utc(r.at), "account": r.account, "category": r.category, "ref": r.ref,
                 "kind": r.kind, "amount_micro": int(r.spent_delta)} for r in rows]

    def verify(self) -> list[str]:
        """Recompute balances from the journal and open holds; return any discrepancies."""
        problems = []
        with self.reader.connect() as conn:
            journal = {(r.account, r.period_key): (int(r.h), int(r.s)) for r in conn.execute(
                select(db.entries.c.account, db.entries.c.period_key,
                       func.sum(db.entries.c.held_delta).label("h"),
                       func.sum(db.entries.c.spent_delta).label("s"))
                .group_by(db.entries.c.account, db.entries.c.period_key))}
            cached = {(r.account, r.period_key): (int(r.held_micro), int(r.spent_micro))
                      for r in conn.execute(select(db.balances))}
            open_held: dict[tuple[str, str], int] = {}
            for r in conn.execute(select(db.entries.c.account, db.entries.c.period_key,
                                         db.holds.c.amount_micro)
                                  .join(db.holds, db.holds.c.id == db.entries.c.hold_id)
                                  .where(and_(db.holds.c.status == "open",
                                              db.entries.c.kind == "hold"))):
                key = (r.account, r.period_key)
                open_held[key] = open_held.get(key, 0) + int(r.amount_micro)
        for key in sorted(set(journal) | set(cached)):
            if journal.get(key, (0, 0)) != cached.get(key, (0, 0)):
                problems.append(f"{key}: journal {journal.get(key)} != balance {cached.get(key)}")
            if journal.get(key, (0, 0))[0] != open_held.get(key, 0):
                problems.append(f"{key}: held {journal.get(key)} != open holds {open_held.get(key, 0)}")
        return problems
