"""What the JupyterLab status bar shows: one pure function over the service's cost
report and this server's rate, so the browser makes one request per refresh."""

from __future__ import annotations

MICRO = 1_000_000


def budget_level(used_pct: float | None, thresholds: list[int]) -> str:
    """'none' (no budget), 'ok' (below the first threshold), 'warn' (past one but the
    last), 'over' (at or past the last, normally 100 %)."""
    if used_pct is None:
        return "none"
    marks = sorted(thresholds) or [100]
    if used_pct >= marks[-1]:
        return "over"
    if used_pct >= marks[0]:
        return "warn"
    return "ok"


def status_summary(report: dict, hourly_cost: float, profile: str) -> dict:
    """The status bar's figures in USD from a ``costs_report`` (integer micro-dollars)."""
    budget = report.get("budget_micro")
    spent, held = int(report.get("spent_micro") or 0), int(report.get("held_micro") or 0)
    thresholds = [int(t) for t in report.get("thresholds") or []]
    used_pct = None
    if budget:  # 0 or None: no budget
        used_pct = round(100 * (spent + held) / budget, 1)
    passed = [t for t in thresholds if used_pct is not None and used_pct >= t]
    return {
        "profile": profile,
        "hourly_cost_usd": hourly_cost,
        "spent_usd": spent / MICRO,
        "held_usd": held / MICRO,
        "budget_usd": budget / MICRO if budget else None,
        "remaining_usd": (report.get("available_micro") or 0) / MICRO if budget else None,
        "used_pct": used_pct,
        "thresholds": thresholds,
        "passed": max(passed) if passed else None,
        "level": budget_level(used_pct, thresholds),
        "blocked": bool(report.get("blocked")),
        "period_start": (report.get("period") or {}).get("start", ""),
        "period_end": (report.get("period") or {}).get("end", ""),
    }
