"""Budgets: accounts, periods and thresholds (pure functions, no I/O).

An account is ``user:NAME``, ``group:NAME`` (a lab or a class) or ``hub`` (the
whole hub; every transaction is also posted to it, so hub-wide totals never
double count a transaction that hit both a user and a group).
A budget's period is the calendar month (UTC) or a fixed window
``[start, end)``; outside its window a window budget funds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..constants import CATEGORIES

HUB = "hub"
PERIODS = ("monthly", "window")

DEFAULT_THRESHOLDS = (50, 80, 100)
_ACCOUNT_RE = re.compile(r"^(user|group):\w[\w.@+-]{0,127}$")


def check_account(account: str) -> str:
    if account == HUB or (isinstance(account, str) and _ACCOUNT_RE.match(account)):
        return account
    raise ValueError(
        f"account: {account!r} is not valid; use 'user:NAME', 'group:NAME' or 'hub' "
        "(NAME: letters, digits and . _ @ + -, no spaces)"
    )


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise ValueError(f"category: {category!r}; allowed: {', '.join(CATEGORIES)}")
    return category


def check_thresholds(thresholds) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(t) for t in thresholds}))
    except (TypeError, ValueError):
        raise ValueError(f"thresholds: {thresholds!r} must be whole percentages") from None
    if not values or any(t <= 0 or t > 1000 for t in values):
        raise ValueError(f"thresholds: {thresholds!r} must be percentages in 1..1000")
    return values


def utc(dt: datetime | None) -> datetime:
    """Aware UTC datetime (naive input is taken to be UTC; None is now)."""
    if dt is None:
        return datetime.now(UTC)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def naive(dt: datetime) -> datetime:
    """Naive UTC, as stored in the database."""
    return utc(dt).replace(tzinfo=None)


@dataclass(frozen=True)
class Budget:
    account: str
    amount_micro: int
    period: str = "monthly"
    start: datetime | None = None
    end: datetime | None = None
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    override_until: datetime | None = None
    override_by: str | None = None
    override_reason: str = ""

    def overridden(self, now: datetime) -> bool:
        return self.override_until is not None and utc(now) < utc(self.override_until)


@dataclass(frozen=True)
class Period:
    key: str
    start: datetime
    end: datetime
    funded: bool = True  # False outside a window budget's window

    def as_dict(self) -> dict:
        return {"key": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    at = utc(at)
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    end = datetime(at.year + (at.month == 12), at.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_for(budget: Budget | None, at: datetime) -> Period:
    """The accounting period that ``at`` falls in for this budget (monthly when unbudgeted)."""
    at = utc(at)
    if budget is None or budget.period == "monthly":
        start, end = month_bounds(at)
        return Period(f"{start:%Y-%m}", start, end)
    start, end = utc(budget.start), utc(budget.end)
    key = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
    if start <= at < end:
        return Period(f"window:{key}", start, end)
    if at < start:
        return Period(f"before:{key}", at, start, funded=False)
    return Period(f"after:{key}", end, max(at, end), funded=False)


def validate_budget(account, amount_micro, period, start, end, thresholds) -> Budget:
    check_account(account)
    if isinstance(amount_micro, bool) or not isinstance(amount_micro, int):
        raise TypeError(f"amount_micro: must be an int of micro-dollars, not {type(amount_micro).__name__}")
    if amount_micro < 0:
        raise ValueError("amount_micro: must be >= 0")
    if period not in PERIODS:
        raise ValueError(f"period: {period!r}; allowed: {', '.join(PERIODS)}")
    if period == "window":
        if start is None or end is None:
            raise ValueError("start, end: a 'window' budget needs both")
        if utc(end) <= utc(start):
            raise ValueError("end: must be after start")
        start, end = utc(start), utc(end)
    elif start is not None or end is not None:
        raise ValueError("start, end: only a 'window' budget takes them")
    return Budget(account, amount_micro, period, start, end, check_thresholds(thresholds))


def crossed(thresholds, spent: int, amount: int, already: set[int]) -> list[int]:
    """Thresholds (percent) reached by ``spent`` of ``amount`` and not yet notified."""
    if amount <= 0:
        return [t for t in thresholds if t not in already] if spent > 0 else []
    return [t for t in thresholds if t not in already and spent * 100 >= t * amount]


@dataclass
class AccountSummary:
    account: str
    period: Period
    budget_micro: int | None  # None: no budget (unlimited)
    held_micro: int
    spent_micro: int
    by_category: dict[str, int] = field(default_factory=dict)
    overridden: bool = False
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS

    @property
    def available_micro(self) -> int | None:
        if self.budget_micro is None:
            return None
        return self.budget_micro - self.held_micro - self.spent_micro

    @property
    def percent_spent(self) -> float | None:  # display only
        if not self.budget_micro:
            return None
        return 100.0 * self.spent_micro / self.budget_micro

    @property
    def blocked(self) -> bool:
        avail = self.available_micro
        return avail is not None and avail <= 0 and not self.overridden

    def as_dict(self) -> dict:
        return {
            "account": self.account,
            "period": self.period.as_dict(),
            "budget_micro": self.budget_micro,
            "held_micro": self.held_micro,
            "spent_micro": self.spent_micro,
            "available_micro": self.available_micro,
            "by_category": {c: self.by_category.get(c, 0) for c in CATEGORIES},
            "overridden": self.overridden,
            "blocked": self.blocked,
            "thresholds": list(self.thresholds),
        }
