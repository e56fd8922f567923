"""Costs and budgets in the lens service: gates, metering, %costs, the admin view.

Thin adapter over jupyter_ext.costs; the engine's calls block, so they run in
threads. Group membership comes from the hub, never from the caller.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape

from tornado import web

from jupyter_ext.clients.base import PeerError

from ..constants import CATEGORIES, DASK, SERVERS
from ..costs import gate, plots, reports
from ..costs.config import CostsSettings
from ..costs.ledger import BudgetExceeded
from ..costs.money import MICRO
from ..costs.usage import (
    UsageMeter,
    over_limit_refs,
    parse_server_ref,
    release_orphan_holds,
    server_ref,
)
from .base import LensHandler, LensPageHandler
from .db import claim_key, prune_keys, release_key, server_events


def usd(micro: int | None) -> float | None:
    return None if micro is None else micro / MICRO


def _rate(value: str | None) -> Decimal:
    try:
        rate = Decimal(value or "0")
    except ArithmeticError:
        raise web.HTTPError(400, "rate must be a number (USD per hour)") from None
    if rate < 0 or not rate.is_finite():
        raise web.HTTPError(400, "rate must be a non-negative number (USD per hour)")
    return rate


class Costs:
    """The service's costs state: ledger, price catalog, usage meter, hub lookups."""

    def __init__(self, lens):
        self.lens = lens
        self.settings = CostsSettings(parent=lens, db_url=lens.db_url)
        # one engine per process: the service's (same URL, same SQLite write lock)
        same = not self.settings.db_url or self.settings.db_url == lens.db_url
        self.ledger = self.settings.make_ledger(engine=lens.engine if same else None)
        self.catalog = self.settings.load_catalog()
        self.meter = UsageMeter(self.ledger)
        self._groups: dict[str, tuple[float, list[str]]] = {}

    async def groups_of(self, user: str) -> list[str]:
        """The user's hub groups (cached 30 s), from the hub API with the service token."""
        hit = self._groups.get(user)
        if hit and time.monotonic() - hit[0] < 30:
            return hit[1]
        try:
            model = await self.lens.hub.get_user(user)
        except PeerError as exc:
            raise web.HTTPError(503 if exc.transient else 502, f"hub lookup of {user!r} failed: {exc}") from None
        if model is None:
            raise web.HTTPError(404, f"No hub user {user!r}.")
        groups = model.get("groups", [])
        self._groups[user] = (time.monotonic(), groups)
        return groups

    async def accounts(self, user: str) -> list[str]:
        return gate.accounts_for(user, await self.groups_of(user))

    async def budget_note(self, accounts: list[str]) -> str | None:
        room = await asyncio.to_thread(gate.remaining, self.ledger, accounts)
        if room is None:
            return None
        return f"Budget left this period: ${max(room, 0) / MICRO:,.2f}"


async def stop_servers_over_budget(lens) -> list[str]:
    """With ``CostsSettings.stop_servers_at_limit``: stop the running servers charged to an
    account at 100 % of its budget with no override (their metering then stops too)."""
    refs = await asyncio.to_thread(over_limit_refs, lens.costs.meter, SERVERS)
    stopped = []
    for ref in refs:
        parsed = parse_server_ref(ref)
        if parsed is None:
            continue
        await lens.hub.stop_server(*parsed)
        lens.log.warning("budget: stopping %s's server %r: its budget is used up", parsed[0], parsed[1])
        stopped.append(ref)
    return stopped


async def reconcile_servers(lens) -> dict:
    """Bring the meter in line with the hub: close intervals of servers that are gone,
    release start holds of starts that never finished (both are lost events)."""
    running = await lens.hub.active_users()
    live = {server_ref(user, server) for user, servers in running.items() for server in servers}
    costs = lens.costs
    closed = await asyncio.to_thread(costs.meter.close_stale, live, None, SERVERS)
    released = await asyncio.to_thread(release_orphan_holds, costs.ledger, live,
                                       costs.settings.orphan_hold_seconds, SERVERS)
    for ref in closed:
        lens.log.warning("meter: %s is no longer running (its stop event was lost); interval closed", ref)
    for hold_id in released:
        lens.log.warning("meter: start hold %s had no server; released", hold_id)
    return {"closed": closed, "released": released}


async def accrue_and_enforce(lens) -> None:
    await asyncio.to_thread(lens.costs.meter.accrue)
    if lens.costs.settings.stop_servers_at_limit:
        await stop_servers_over_budget(lens)


def setup(lens, prefix: str) -> list[tuple]:
    lens.costs = Costs(lens)
    lens.add_periodic(lens.costs.settings.accrue_interval, lambda: accrue_and_enforce(lens))
    lens.add_periodic(lens.costs.settings.reconcile_interval, lambda: reconcile_servers(lens))
    lens.add_periodic(86400, lambda: asyncio.to_thread(prune_keys, lens.engine))
    return [
        (rf"{prefix}api/budget/check", BudgetCheckHandler),
        (rf"{prefix}api/budget/hold", BudgetHoldHandler),
        (rf"{prefix}api/budget/release", BudgetReleaseHandler),
        (rf"{prefix}api/budget/alerts", BudgetAlertsHandler),
        (rf"{prefix}api/meter/servers", ServerMeterHandler),
        (rf"{prefix}api/costs", CostsReportHandler),
        (rf"{prefix}admin/costs", AdminCostsPage),
        (rf"{prefix}admin/costs\.csv", AdminCostsCSV),
        (rf"{prefix}metrics", MetricsHandler),
    ]


def days_argument(handler, default: int = 30) -> int:
    raw = handler.get_argument("days", str(default))
    try:
        days = int(raw)
    except ValueError:
        raise web.HTTPError(400, f"days must be a whole number, not {raw!r}") from None
    if not 1 <= days <= 3660:
        raise web.HTTPError(400, "days must be between 1 and 3660")
    return days


class CostsHandler(LensHandler):
    @property
    def costs(self) -> Costs:
        return self.lens.costs


class BudgetCheckHandler(CostsHandler):
    """May this user start spending at `rate` $/h? No hold (the form, the gateway)."""

    async def get(self):
        user = self.get_argument("user", "")
        if not user:
            raise web.HTTPError(400, "Give ?user=NAME.")
        self.require_user_or_admin(user)
        category = self.get_argument("category", SERVERS)
        if category not in CATEGORIES:
            raise web.HTTPError(400, f"category must be one of {', '.join(CATEGORIES)}")
        rate = _rate(self.get_argument("rate", "0"))
        accounts = await self.costs.accounts(user)
        note = await self.costs.budget_note(accounts)
        try:
            est = await asyncio.to_thread(
                gate.spawn_gate, self.costs.ledger, accounts, rate, self.costs.settings.gate_hours
            )
        except BudgetExceeded as exc:
            self.write_json({"allowed": False, "message": exc.message, "summary": note, **exc.as_dict()})
            return
        room = est.detail.get("remaining_micro")
        self.write_json({"allowed": True, "message": "", "summary": note, "remaining_usd": usd(room)})


class BudgetHoldHandler(CostsHandler):
    """Race-safe start gate: hold `gate_hours` of the rate (hub services only)."""

    async def post(self):
        self.require_trusted_service()
        body = self.json_body()
        user, ref = str(body.get("user", "")), str(body.get("ref", ""))
        category = body.get("category", SERVERS)
        if not user or not ref or category not in (SERVERS, DASK):
            raise web.HTTPError(400, "Give user, ref and category (servers or dask).")
        rate = _rate(str(body.get("rate", "0")))
        accounts = await self.costs.accounts(user)
        try:
            hold_id, est = await asyncio.to_thread(
                gate.spawn_hold, self.costs.ledger, accounts, rate, ref,
                self.costs.settings.gate_hours, category,
            )
        except BudgetExceeded as exc:
            self.write_json({"allowed": False, "message": exc.message, **exc.as_dict()}, status=403)
            return
        self.write_json({"allowed": True, "hold_id": hold_id, "held_usd": usd(est.amount_micro)})


class BudgetReleaseHandler(CostsHandler):
    async def post(self):
        self.require_trusted_service()
        hold_id = self.json_body().get("hold_id")
        if not isinstance(hold_id, int):
            raise web.HTTPError(400, "hold_id must be an integer")
        await asyncio.to_thread(self.costs.ledger.release, hold_id, None, missing_ok=True)
        self.write_json({"released": hold_id})


class BudgetAlertsHandler(CostsHandler):
    """Standing threshold alerts of this period: the hub's banner, or one user's own.

    Hub services and admins get every account's (``?user=`` narrows it); a user
    gets those of their own account and their groups only.
    """

    async def get(self):
        who = self.require_identity()
        if self.is_service:
            self.require_trusted_service()
        user = self.get_argument("user", "")
        if user:
            self.require_user_or_admin(user)
            accounts = await self.costs.accounts(user)
        elif self.is_admin or self.is_service:
            accounts = None  # every account's: the hub's banner
        else:
            accounts = await self.costs.accounts(who["name"])
        events = await asyncio.to_thread(self.costs.ledger.active_alerts, accounts)
        self.write_json({"alerts": [e.as_dict() for e in events]})


def event_time(value, now: datetime) -> datetime:
    """When a metering event happened (``at``, ISO 8601; default now, never in the future).
    An event replayed from the hub's outbox is metered at its own time, not its delivery's."""
    if value in (None, ""):
        return now
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise web.HTTPError(400, f"at must be an ISO 8601 time, not {value!r}") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return min(at, now)


class ServerMeterHandler(CostsHandler):
    """Server start/stop events from the spawners: the meter opens and closes intervals.

    With an ``Idempotency-Key`` header an event is applied once, however often it is sent."""

    async def post(self):
        who = self.require_trusted_service()
        body = self.json_body()
        try:
            user, server = str(body["user"]), str(body.get("server", ""))
            profile, event = str(body["profile"]), str(body["event"])
            rate = _rate(str(body.get("rate", "0")))
            hold_id = body.get("hold_id")
        except KeyError as exc:
            raise web.HTTPError(400, f"Bad meter event: missing {exc}") from None
        if event not in ("start", "stop"):
            raise web.HTTPError(400, "event must be 'start' or 'stop'")
        at = event_time(body.get("at"), datetime.now(UTC))
        key, caller = self.request.headers.get("Idempotency-Key", ""), str(who.get("name", ""))
        engine = self.lens.engine
        if key and not await asyncio.to_thread(claim_key, engine, key, caller):
            self.write_json({"recorded": True, "duplicate": True})
            return
        try:
            await self._apply(user, server, profile, event, rate, hold_id, at)
        except BaseException:
            if key:
                await asyncio.to_thread(release_key, engine, key, caller)
            raise
        self.write_json({"recorded": True}, status=201)

    async def _apply(self, user, server, profile, event, rate, hold_id, at) -> None:
        ref = server_ref(user, server)
        if event == "start":
            accounts = await self.costs.accounts(user)
            await asyncio.to_thread(
                self.costs.meter.start, ref, SERVERS, accounts, rate, at,
                snapshot=self.costs.catalog.info.as_dict(), detail={"profile": profile},
                hold_id=hold_id if isinstance(hold_id, int) else None,
            )
        else:
            await asyncio.to_thread(self.costs.meter.stop, ref, at)
        with self.lens.engine.begin() as conn:
            conn.execute(server_events.insert().values(
                user=user, server=server, profile=profile, rate_usd_per_hour=float(rate), event=event,
                at=at.replace(tzinfo=None),
            ))


class CostsReportHandler(CostsHandler):
    """What %costs shows: the caller's spend (or a group's, for its members)."""

    async def get(self):
        who = self.require_identity()
        group = self.get_argument("group", "")
        user = self.get_argument("user", "") or (who.get("name") if who.get("kind") == "user" else "")
        if group:
            member_of = who.get("groups", []) if who.get("kind") == "user" else []
            if not (self.is_admin or group in member_of):
                raise web.HTTPError(403, f"You are not a member of the group {group!r}.")
            account = f"group:{group}"
        else:
            if not user:
                raise web.HTTPError(400, "Give ?user=NAME or ?group=NAME.")
            self.require_user_or_admin(user)
            account = f"user:{user}"
        report = await asyncio.to_thread(
            reports.costs_report, self.costs.ledger, account, None, self.costs.catalog.info.as_dict()
        )
        self.write_json(report)


class AdminCostsPage(LensPageHandler):
    @web.authenticated
    async def get(self):
        self.require_admin()
        costs: Costs = self.lens.costs
        end = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
        start = end - timedelta(days=days_argument(self) + 1)
        tables = await asyncio.to_thread(reports.admin_tables, costs.ledger, start, end)
        svg = await asyncio.to_thread(
            lambda: plots.to_svg(plots.daily_figure(tables["series"]["dates"], tables["series"]["series"]))
        )
        sections = []
        for name in ("users", "groups", "categories"):
            rows = tables[name]
            if not rows:
                sections.append(f"<h2>{name}</h2><p>No spending yet.</p>")
                continue
            cols = list(rows[0].keys())
            head = "".join(f"<th>{escape(c)}</th>" for c in cols)
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(str(r[c]))}</td>" for c in cols) + "</tr>" for r in rows
            )
            sections.append(
                f'<h2>{name} <small><a href="costs.csv?table={name}">CSV</a></small></h2>'
                f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"
            )
        self.set_header("Content-Type", "text/html")
        self.finish(
            "<!doctype html><html><head><title>lens costs</title></head><body>"
            f"<h1>lens costs</h1><p>Prices: {escape(str(costs.catalog.info.as_dict()))}</p>"
            f'<div class="plot">{svg}</div>{"".join(sections)}</body></html>'
        )


class AdminCostsCSV(LensHandler):
    async def get(self):
        self.require_admin()
        table = self.get_argument("table", "users")
        if table not in ("users", "groups", "categories"):
            raise web.HTTPError(400, "table must be users, groups or categories")
        end = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
        start = end - timedelta(days=days_argument(self) + 1)
        tables = await asyncio.to_thread(reports.admin_tables, self.lens.costs.ledger, start, end)
        self.set_header("Content-Type", "text/csv")
        self.set_header("Content-Disposition", f'attachment; filename="lens-costs-{table}.csv"')
        self.finish(reports.to_csv(tables[table]))


class MetricsHandler(LensHandler):
    """Prometheus cost gauges; needs an admin's or a hub service's token."""

    async def get(self):
        who = self.require_identity()
        if not (self.is_admin or who.get("kind") == "service"):
            raise web.HTTPError(403, "Metrics need an admin or a hub service token.")
        summaries = await asyncio.to_thread(reports.all_summaries, self.lens.costs.ledger)
        self.set_header("Content-Type", "text/plain; version=0.0.4")
        self.finish(reports.prometheus_text(summaries))
