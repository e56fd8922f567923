"""Core routes of the lens service: health, identity, admin page, hub bridges."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import sqlalchemy as sa
from tornado import web

from .. import __version__
from .base import LensHandler, LensPageHandler
from .db import server_events


class HealthHandler(LensHandler):
    def get(self):
        self.require_identity()
        with self.lens.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        self.write_json({"status": "ok", "version": __version__})


class MeHandler(LensHandler):
    def get(self):
        who = self.require_identity()
        self.write_json(
            {
                "kind": who.get("kind"),
                "name": who.get("name"),
                "admin": bool(who.get("admin")),
                "groups": who.get("groups", []),
            }
        )


class UserHandler(LensHandler):
    """A user's lens summary; only the user themself or an admin."""

    def get(self, name):
        self.require_user_or_admin(name)
        with self.lens.engine.connect() as conn:
            running = conn.execute(
                sa.select(sa.func.count()).select_from(server_events).where(server_events.c.user == name)
            ).scalar()
        self.write_json({"name": name, "server_events": running, "budget": self.lens.budget_summary(name)})


class BudgetCheckHandler(LensHandler):
    """May this user start spending (servers, dask, jobs)? Asked by the hub's services."""

    def get(self):
        user = self.get_argument("user", "")
        if not user:
            raise web.HTTPError(400, "Give ?user=NAME.")
        self.require_user_or_admin(user)
        category = self.get_argument("category", "servers")
        if category not in ("servers", "dask", "jobs", "storage"):
            raise web.HTTPError(400, "category must be one of servers, dask, jobs, storage")
        self.write_json(self.lens.budget_check(user, category))


class ServerMeterHandler(LensHandler):
    """Server start/stop events from the spawners, the basis of server metering."""

    def post(self):
        self.require_trusted_service()
        body = self.json_body()
        try:
            event = {
                "user": str(body["user"]),
                "server": str(body.get("server", "")),
                "profile": str(body["profile"]),
                "rate_usd_per_hour": float(body.get("rate", 0.0)),
                "event": str(body["event"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise web.HTTPError(400, f"Bad meter event: {exc}") from None
        if event["event"] not in ("start", "stop"):
            raise web.HTTPError(400, "event must be 'start' or 'stop'")
        event["at"] = datetime.now(UTC).replace(tzinfo=None)
        with self.lens.engine.begin() as conn:
            conn.execute(server_events.insert().values(**event))
        self.write_json({"recorded": True}, status=201)


class AdminPageHandler(LensPageHandler):
    @web.authenticated
    def get(self):
        self.require_admin()
        with self.lens.engine.connect() as conn:
            rows = conn.execute(
                sa.select(server_events).order_by(server_events.c.at.desc()).limit(50)
            ).all()
        body = "".join(
            f"<tr><td>{escape(r.user)}</td><td>{escape(r.profile)}</td><td>{escape(r.event)}</td>"
            f"<td>{r.at:%Y-%m-%d %H:%M:%S}</td><td>${r.rate_usd_per_hour:.3f}/h</td></tr>"
            for r in rows
        )
        self.set_header("Content-Type", "text/html")
        self.finish(
            "<!doctype html><html><head><title>lens admin</title></head><body>"
            "<h1>lens admin</h1><h2>Recent servers</h2>"
            "<table border=1><tr><th>user</th><th>profile</th><th>event</th><th>at (UTC)</th><th>rate</th></tr>"
            f"{body}</table></body></html>"
        )


def core_handlers(prefix: str) -> list[tuple]:
    return [
        (rf"{prefix}api/health", HealthHandler),
        (rf"{prefix}api/me", MeHandler),
        (rf"{prefix}api/users/([a-z][a-z0-9_-]*)", UserHandler),
        (rf"{prefix}api/budget/check", BudgetCheckHandler),
        (rf"{prefix}api/meter/servers", ServerMeterHandler),
        (rf"{prefix}admin/?", AdminPageHandler),
    ]
