"""Core routes of the lens service: health, identity, admin page, hub bridges."""

from __future__ import annotations

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
        self.write_json({"name": name, "server_events": running})


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
        (rf"{prefix}admin/?", AdminPageHandler),
    ]
