"""Reconcile the meter with AWS Cost Explorer, per ``lens:user`` tag.

``fetch_costs_by_tag`` pulls ``ce.get_cost_and_usage`` grouped by the tag;
``reconcile`` lines that up with what the ledger metered for ``user:NAME``
accounts over the same dates and reports the difference.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from .money import to_micro, usd

UNTAGGED = "(untagged)"


def fetch_costs_by_tag(ce, start: date, end: date, tag: str = "lens:user",
                       metric: str = "UnblendedCost", granularity: str = "MONTHLY") -> dict[str, int]:
    """``{tag value: micro-dollars}`` over ``[start, end)``; untagged spend under ``(untagged)``."""
    if end <= start:
        raise ValueError("end: must be after start")
    totals: dict[str, int] = {}
    kwargs = {"TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
              "Granularity": granularity, "Metrics": [metric],
              "GroupBy": [{"Type": "TAG", "Key": tag}]}
    while True:
        page = ce.get_cost_and_usage(**kwargs)
        for result in page.get("ResultsByTime", []):
            for group in result.get("Groups", []):
                key = group["Keys"][0]
                value = key.split("$", 1)[1] if "$" in key else key
                amount = group.get("Metrics", {}).get(metric, {}).get("Amount", "0")
                name = value or UNTAGGED
                totals[name] = totals.get(name, 0) + to_micro(Decimal(amount), "Amount")
        token = page.get("NextPageToken")
        if not token:
            return totals
        kwargs["NextPageToken"] = token


def metered_by_user(ledger, start: date, end: date) -> dict[str, int]:
    lo = datetime.combine(start, time.min, UTC)
    hi = datetime.combine(end, time.min, UTC)
    out: dict[str, int] = {}
    for r in ledger.spend_rows(lo, hi):
        if r["account"].startswith("user:"):
            name = r["account"].split(":", 1)[1]
            out[name] = out.get(name, 0) + r["amount_micro"]
    return out


def reconcile(metered: dict[str, int], actual: dict[str, int], tolerance_pct: int = 10) -> list[dict]:
    """One row per user: metered, actual (Cost Explorer), difference, and whether it is
    beyond ``tolerance_pct`` percent of the larger of the two."""
    rows = []
    for user in sorted(set(metered) | set(actual)):
        m, a = metered.get(user, 0), actual.get(user, 0)
        diff = a - m
        base = max(abs(m), abs(a))
        rows.append({"user": user, "metered_micro": m, "actual_micro": a, "diff_micro": diff,
                     "diff_permille": (diff * 1000 // base) if base else 0,
                     "flag": bool(base) and abs(diff) * 100 > tolerance_pct * base})
    return rows


def report_text(rows: list[dict], start: date, end: date) -> str:
    head = f"Cost Explorer vs meter, {start.isoformat()} .. {end.isoformat()} (end exclusive)"
    lines = [head, f"{'user':<24} {'metered':>12} {'actual':>12} {'diff':>12} {'diff%':>7}"]
    for r in rows:
        pct = f"{r['diff_permille'] / 10:+.1f}" if r["metered_micro"] or r["actual_micro"] else "0.0"
        mark = "  <-- check" if r["flag"] else ""
        lines.append(f"{r['user']:<24} {usd(r['metered_micro']):>12} {usd(r['actual_micro']):>12} "
                     f"{usd(r['diff_micro']):>12} {pct:>7}{mark}")
    tm = sum(r["metered_micro"] for r in rows)
    ta = sum(r["actual_micro"] for r in rows)
    lines.append(f"{'TOTAL':<24} {usd(tm):>12} {usd(ta):>12} {usd(ta - tm):>12}")
    return "\n".join(lines)
