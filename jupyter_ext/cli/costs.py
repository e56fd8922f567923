"""``lens costs`` (reconcile, report, export, metrics) and ``lens budgets`` (set, show,
override, remove): admin commands over the ledger database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from jupyter_ext.cli.main import CommandError


def _ledger(args):
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    return Ledger(make_engine(args.db))


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{field}: {value!r} is not a date (YYYY-MM-DD)") from None


def _when(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{field}: {value!r} is not an ISO date/time (e.g. 2026-09-01 or 2026-09-01T12:00)") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _range(args) -> tuple[date, date]:
    today = datetime.now(UTC).date()
    start = _date(args.start, "--start") if args.start else today.replace(day=1)
    end = _date(args.end, "--end") if args.end else today + timedelta(days=1)
    if end <= start:
        raise CommandError("--end: must be after --start")
    return start, end


# -- costs -----------------------------------------------------------------------------
def cmd_reconcile(args) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from jupyter_ext.costs.reconcile import (
        fetch_costs_by_tag,
        metered_by_user,
        reconcile,
        report_text,
    )

    start, end = _range(args)
    try:
        actual = fetch_costs_by_tag(boto3.client("ce", region_name="us-east-1"), start, end,
                                    tag=args.tag, metric=args.metric)
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(f"Cost Explorer call failed: {exc}") from None
    rows = reconcile(metered_by_user(_ledger(args), start, end), actual, args.tolerance)
    if args.json:
        print(json.dumps({"start": start.isoformat(), "end": end.isoformat(), "rows": rows}, indent=1))
    else:
        print(report_text(rows, start, end))
    return 1 if args.fail_on_diff and any(r["flag"] for r in rows) else 0


def cmd_report(args) -> int:
    from jupyter_ext.costs.money import usd
    from jupyter_ext.costs.reports import costs_report

    try:
        rep = costs_report(_ledger(args), args.account)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(rep, indent=1, default=str))
        return 0
    budget = "none (unlimited)" if rep["budget_micro"] is None else usd(rep["budget_micro"])
    print(f"{rep['account']}  period {rep['period']['key']}  budget {budget}")
    for cat, amount in rep["by_category"].items():
        print(f"  {cat:<8} {usd(amount):>12}")
    print(f"  {'held':<8} {usd(rep['held_micro']):>12}\n  {'spent':<8} {usd(rep['spent_micro']):>12}")
    if rep["remaining_micro"] is not None:
        print(f"  {'left':<8} {usd(rep['remaining_micro']):>12}")
    fc = rep["forecast"]
    print(f"  burn {usd(fc['burn_micro_per_day'])}/day; runs out: {fc['exhausts_at'] or 'not at this rate'}")
    return 0


def cmd_export(args) -> int:
    from jupyter_ext.costs.reports import admin_tables, to_csv

    start, end = _range(args)
    tables = admin_tables(_ledger(args), datetime.combine(start, datetime.min.time(), UTC),
                          datetime.combine(end, datetime.min.time(), UTC))
    print(to_csv(tables[args.table]), end="")
    return 0


def cmd_metrics(args) -> int:
    from jupyter_ext.costs.reports import all_summaries, prometheus_text

    print(prometheus_text(all_summaries(_ledger(args))), end="")
    return 0


# -- budgets -----------------------------------------------------------------------------
def cmd_budget_set(args) -> int:
    from jupyter_ext.costs.money import to_micro, usd

    try:
        thresholds = [int(t) for t in args.thresholds.split(",")]
    except ValueError:
        raise CommandError(f"--thresholds: {args.thresholds!r} must be comma-separated whole "
                           "percentages, e.g. 50,80,100") from None
    try:
        amount = to_micro(args.amount_usd, "AMOUNT_USD")
        b = _ledger(args).set_budget(args.account, amount, args.period, _when(args.start, "--start"),
                                     _when(args.end, "--end"), thresholds)
    except (ValueError, TypeError) as exc:
        raise CommandError(str(exc)) from None
    window = f" {b.start:%Y-%m-%d %H:%M} .. {b.end:%Y-%m-%d %H:%M} UTC" if b.period == "window" else ""
    print(f"budget {b.account}: {usd(b.amount_micro)} {b.period}{window}, "
          f"thresholds {','.join(map(str, b.thresholds))}%")
    return 0


def cmd_budget_show(args) -> int:
    from jupyter_ext.costs.money import usd

    ledger = _ledger(args)
    try:
        accounts = [args.account] if args.account else [b.account for b in ledger.budgets()]
        summaries = [ledger.summary(a) for a in accounts]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], indent=1))
        return 0
    print(f"{'account':<28} {'period':<12} {'budget':>11} {'spent':>11} {'held':>10} {'left':>11}  state")
    for s in summaries:
        money = lambda v: "unlimited" if v is None else usd(v)  # noqa: E731
        state = "BLOCKED" if s.blocked else ("override" if s.overridden else "ok")
        print(f"{s.account:<28} {s.period.key[:12]:<12} {money(s.budget_micro):>11} "
              f"{usd(s.spent_micro):>11} {usd(s.held_micro):>10} {money(s.available_micro):>11}  {state}")
    if args.verify:
        problems = ledger.verify()
        print("ledger verify: " + ("ok" if not problems else "; ".join(problems)))
        return 1 if problems else 0
    return 0


def cmd_budget_override(args) -> int:
    ledger = _ledger(args)
    try:
        if args.clear:
            ledger.clear_override(args.account)
            print(f"override of {args.account} cleared")
            return 0
        if not args.by:
            raise CommandError("--by: name the admin granting the override")
        b = ledger.override(args.account, args.by, _when(args.until, "--until"), args.reason or "")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"{b.account} may spend past its budget until {b.override_until:%Y-%m-%d %H:%M} UTC "
          f"(by {b.override_by})")
    return 0


def cmd_budget_remove(args) -> int:
    if not _ledger(args).remove_budget(args.account):
        raise CommandError(f"account: {args.account!r} has no budget")
    print(f"budget of {args.account} removed (its spending is now unlimited)")
    return 0


def _db_arg(p) -> None:
    p.add_argument("--db", help="lens database URL (default: $LENS_DB_URL, else "
                                "$LENS_STATE_DIR/lens.sqlite, the database the service uses)")


def register(subparsers) -> None:
    p = subparsers.add_parser("costs", help="cost reports, export and reconciliation")
    sub = p.add_subparsers(dest="costs_command", metavar="ACTION")
    r = sub.add_parser("reconcile", help="compare Cost Explorer (by the lens:user tag) with the meter")
    r.add_argument("--start", help="first day, YYYY-MM-DD (default: first of this month)")
    r.add_argument("--end", help="day after the last, YYYY-MM-DD (default: tomorrow)")
    r.add_argument("--tag", default="lens:user")
    r.add_argument("--metric", default="UnblendedCost",
                   choices=["UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost"])
    r.add_argument("--tolerance", type=int, default=10, help="flag differences above this %% (default 10)")
    r.add_argument("--fail-on-diff", action="store_true", help="exit 1 when any user is flagged")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_reconcile)
    rep = sub.add_parser("report", help="spend this period for one account (what %%costs shows)")
    rep.add_argument("account", help="user:NAME, group:NAME or hub")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(func=cmd_report)
    ex = sub.add_parser("export", help="CSV of spend per user, group or category")
    ex.add_argument("--table", choices=["users", "groups", "categories"], default="users")
    ex.add_argument("--start")
    ex.add_argument("--end")
    ex.set_defaults(func=cmd_export)
    m = sub.add_parser("metrics", help="Prometheus text exposition of the cost gauges")
    m.set_defaults(func=cmd_metrics)
    for q in (r, rep, ex, m):
        _db_arg(q)
    p.set_defaults(func=lambda _a: p.print_help() or 1)

    b = subparsers.add_parser("budgets", help="budgets per user or group (admins)")
    bsub = b.add_subparsers(dest="budgets_command", metavar="ACTION")
    s = bsub.add_parser("set", help="set or change a budget")
    s.add_argument("account", help="user:NAME, group:NAME or hub")
    s.add_argument("amount_usd", metavar="AMOUNT_USD", help="e.g. 250 or 99.50")
    s.add_argument("--period", choices=["monthly", "window"], default="monthly")
    s.add_argument("--start", help="window start (ISO date/time, UTC)")
    s.add_argument("--end", help="window end (ISO date/time, UTC, exclusive)")
    s.add_argument("--thresholds", default="50,80,100", help="notify at these %% (default 50,80,100)")
    s.set_defaults(func=cmd_budget_set)
    sh = bsub.add_parser("show", help="budgets and what is left this period")
    sh.add_argument("account", nargs="?")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--verify", action="store_true", help="recompute balances from the journal")
    sh.set_defaults(func=cmd_budget_show)
    o = bsub.add_parser("override", help="allow an account to spend past 100%%")
    o.add_argument("account")
    o.add_argument("--by", help="admin name, recorded")
    o.add_argument("--until", help="ISO date/time (default: end of the current period)")
    o.add_argument("--reason")
    o.add_argument("--clear", action="store_true", help="remove the override")
    o.set_defaults(func=cmd_budget_override)
    rm = bsub.add_parser("remove", help="delete a budget (the account becomes unlimited)")
    rm.add_argument("account")
    rm.set_defaults(func=cmd_budget_remove)
    for q in (s, sh, o, rm):
        _db_arg(q)
    b.set_defaults(func=lambda _a: b.print_help() or 1)
