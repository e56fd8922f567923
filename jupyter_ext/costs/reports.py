"""Data for ``%costs`` and the admin page: pure functions over ledger rows.

``costs_report`` feeds ``%costs`` (spend by category, budget, remaining,
burn-rate forecast, daily series). ``admin_tables``, ``daily_by``, ``to_csv``
and ``prometheus_text`` feed the admin page, its CSV export and ``/metrics``.
Amounts stay integer micro-dollars; CSV and Prometheus render them as exact
decimal strings.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta

from ..csvsafe import safe_cell
from .budgets import CATEGORIES, HUB, AccountSummary, utc
from .money import usd_plain


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = utc(start).date(), (utc(end) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)] if last >= first else []


def daily_series(rows, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """``[(YYYY-MM-DD, micro)]`` for every day in ``[start, end)``, zeros included."""
    totals: dict[date, int] = defaultdict(int)
    for r in rows:
        totals[utc(r["at"]).date()] += int(r["amount_micro"])
    return [(d.isoformat(), totals.get(d, 0)) for d in _days(start, end)]


def daily_by(rows, start: datetime, end: datetime, key: str = "category") -> dict:
    """Per-day spend split by ``key`` ('category' or 'account'): ``{"dates", "series"}``."""
    if key not in ("category", "account"):
        raise ValueError(f"key: {key!r}; allowed: 'category', 'account'")
    days = _days(start, end)
    index = {d: i for i, d in enumerate(days)}
    names = list(CATEGORIES) if key == "category" else sorted({r["account"] for r in rows})
    series = {name: [0] * len(days) for name in names}
    for r in rows:
        i = index.get(utc(r["at"]).date())
        if i is not None:
            series.setdefault(r[key], [0] * len(days))[i] += int(r["amount_micro"])
    return {"dates": [d.isoformat() for d in days], "series": series}


def forecast(summary: AccountSummary, rows, now: datetime, window_days: int = 7) -> dict:
    """Burn rate over the last ``window_days`` of this period (or since it began) and the
    date the remaining budget runs out at that rate."""
    now = utc(now)
    since = max(summary.period.start, now - timedelta(days=window_days))
    elapsed = max((now - since).total_seconds(), 3600.0)  # at least an hour, to stay sane
    recent = sum(int(r["amount_micro"]) for r in rows if since <= utc(r["at"]) <= now)
    burn_per_day = recent * 86400 // int(elapsed)
    out = {"burn_micro_per_day": burn_per_day, "window_start": since.isoformat(),
           "exhausts_at": None, "exhausts_before_period_end": False}
    remaining = summary.available_micro
    if remaining is None:
        return out
    if remaining <= 0:
        out.update(exhausts_at=now.isoformat(), exhausts_before_period_end=True)
    elif burn_per_day > 0:
        when = now + timedelta(seconds=remaining * 86400 // burn_per_day)
        out.update(exhausts_at=when.isoformat(), exhausts_before_period_end=when < summary.period.end)
    return out


def costs_report(ledger, account: str, now: datetime | None = None, snapshot: dict | None = None) -> dict:
    """Everything ``%costs`` shows for one account this period."""
    now = utc(now)
    summary = ledger.summary(account, now)
    rows = [r for r in ledger.spend_rows(summary.period.start, now + timedelta(seconds=1), [account])]
    end_of_today = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    return {
        **summary.as_dict(),
        "remaining_micro": summary.available_micro,
        "forecast": forecast(summary, rows, now),
        "daily": daily_series(rows, summary.period.start, min(end_of_today, summary.period.end)),
        "snapshot": snapshot,
        "as_of": now.isoformat(),
    }


def admin_tables(ledger, start: datetime, end: datetime, now: datetime | None = None) -> dict:
    """Tables per user, per group and per category for ``[start, end)``, plus the budget
    state of each account in its current period, and the daily series."""
    now = utc(now)
    rows = ledger.spend_rows(start, end)
    spend: dict[str, dict[str, int]] = defaultdict(lambda: {c: 0 for c in CATEGORIES})
    for r in rows:
        spend[r["account"]][r["category"]] += r["amount_micro"]
    accounts = sorted(set(spend) | set(ledger.accounts()))
    tables: dict[str, list[dict]] = {"users": [], "groups": []}
    for account in accounts:
        if account == HUB:
            continue
        s = ledger.summary(account, now)
        row = {"account": account, "name": account.split(":", 1)[1],
               **{c: spend[account][c] for c in CATEGORIES},
               "total_micro": sum(spend[account].values()),
               "budget_micro": s.budget_micro, "period": s.period.key,
               "period_spent_micro": s.spent_micro, "held_micro": s.held_micro,
               "available_micro": s.available_micro, "blocked": s.blocked, "overridden": s.overridden}
        tables["users" if account.startswith("user:") else "groups"].append(row)
    hub = spend.get(HUB, {c: 0 for c in CATEGORIES})
    tables["categories"] = [{"category": c, "total_micro": hub[c]} for c in CATEGORIES]
    tables["series"] = daily_by([r for r in rows if r["account"] == HUB], start, end)
    tables["range"] = {"start": utc(start).isoformat(), "end": utc(end).isoformat()}
    return tables


MONEY_COLUMNS = {"servers", "dask", "jobs", "storage", "total_micro", "budget_micro",
                 "period_spent_micro", "held_micro", "available_micro"}


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    """CSV text; ``*_micro`` and category columns become exact USD (``..._usd``)."""
    if not rows:
        return ""
    columns = columns or list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.removesuffix("_micro") + "_usd" if c in MONEY_COLUMNS else c for c in columns])
    for row in rows:
        # account names, descriptions and tags are user text: neutralise formulas
        writer.writerow([
            ("" if row.get(c) is None else usd_plain(row[c])) if c in MONEY_COLUMNS
            else safe_cell(row.get(c, "")) for c in columns])
    return out.getvalue()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(summaries: list[AccountSummary]) -> str:
    """Prometheus text exposition (0.0.4) of cost gauges for the current periods."""
    gauges = {
        "lens_cost_spent_usd": "Spend this budget period, by account and category.",
        "lens_cost_held_usd": "Money held for running work, by account.",
        "lens_cost_budget_usd": "Budget for the current period, by account.",
        "lens_cost_available_usd": "Budget left (budget - held - spent), by account.",
        "lens_cost_budget_blocked": "1 when the account is at 100% with no override.",
    }
    lines: dict[str, list[str]] = {name: [] for name in gauges}
    for s in sorted(summaries, key=lambda s: s.account):
        kind = s.account.split(":", 1)[0]
        base = f'account="{_label(s.account)}",kind="{kind}",period="{_label(s.period.key)}"'
        for c in CATEGORIES:
            lines["lens_cost_spent_usd"].append(
                f'lens_cost_spent_usd{{{base},category="{c}"}} {usd_plain(s.by_category.get(c, 0))}')
        lines["lens_cost_held_usd"].append(f"lens_cost_held_usd{{{base}}} {usd_plain(s.held_micro)}")
        if s.budget_micro is not None:
            lines["lens_cost_budget_usd"].append(f"lens_cost_budget_usd{{{base}}} {usd_plain(s.budget_micro)}")
            lines["lens_cost_available_usd"].append(
                f"lens_cost_available_usd{{{base}}} {usd_plain(s.available_micro)}")
            lines["lens_cost_budget_blocked"].append(
                f"lens_cost_budget_blocked{{{base}}} {int(s.blocked)}")
    text = []
    for name, help_text in gauges.items():
        text += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines[name]]
    return "\n".join(text) + "\n"


def all_summaries(ledger, now: datetime | None = None) -> list[AccountSummary]:
    return [ledger.summary(a, now) for a in ledger.accounts()]
