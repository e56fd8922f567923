"""Workshop routes of the lens service, and the periodic expiry task.

- ``GET api/workshops/NAME/seats``: each seat's server, last activity and cost
  so far, for the workshop's instructors (and admins) only.
- Every $LENS_WORKSHOP_EXPIRY_EVERY seconds (default 30): stop the running
  servers of accounts that expired or were disabled (workshop seats).
- On Kubernetes, when the chart gives $LENS_PLACEHOLDERS: every
  $LENS_PLACEHOLDER_EVERY seconds (default 60), scale z2jh's user placeholders
  to what the recorded class plans want now (``lens workshop prewarm``;
  jupyter_ext/workshop/placeholders.py), and back once they end.
"""

from __future__ import annotations

import asyncio
import os

from tornado import web

from ..accounts import AccountStore
from ..workshop import placeholders
from ..workshop.expiry import servers_to_stop
from ..workshop.model import NAME_RE, format_usd, utcnow
from ..workshop.seatcost import seat_costs
from ..workshop.store import WorkshopStore
from .base import LensHandler


class SeatsHandler(LensHandler):
    async def get(self, name):
        who = self.require_identity()
        ws = WorkshopStore(self.lens.engine).get(name)
        is_instructor = ws is not None and who.get("kind") == "user" and who.get("name") in ws.instructors
        if not (self.is_admin or is_instructor):
            # Same answer whether or not the workshop exists: no probing of names.
            raise web.HTTPError(403, f"Only instructors of workshop {name!r} may see its seats.")
        if ws is None:
            raise web.HTTPError(404, f"No workshop {name!r}.")
        costs = await asyncio.to_thread(seat_costs, self.lens.engine, list(ws.seats), utcnow())
        seats = []
        for seat in ws.seats:
            model = await self.lens.hub.get_user(seat) or {}
            servers = model.get("servers") or {}
            seats.append(
                {
                    "username": seat,
                    "server": {k: {"ready": v.get("ready"), "url": v.get("url")} for k, v in servers.items()},
                    "last_activity": model.get("last_activity"),
                    "cost_micro_usd": costs.get(seat, 0),
                    "cost": format_usd(costs.get(seat, 0)),
                }
            )
        self.write_json(
            {
                "workshop": ws.name,
                "state": ws.state(),
                "expires_at": ws.expires_at,
                "budget_per_seat_micro_usd": ws.budget_per_seat_micro,
                "seats": seats,
                "total_cost_micro_usd": sum(costs.values()),
            }
        )


async def expire_servers(lens) -> dict[str, str]:
    """Stop servers of expired or disabled accounts; return who and why."""
    running = await lens.hub.active_users()
    if not running:
        return {}
    store = AccountStore(lens.engine)
    accounts = {n: a for n in running if (a := store.get(n)) is not None}
    stop = servers_to_stop(running, accounts, utcnow())
    for name, why in stop.items():
        for server in running[name]:
            await lens.hub.stop_server(name, server)
        lens.log.info("workshop expiry: stopping %s's server (%s)", name, why)
    return stop


async def reconcile_placeholders(lens, scaler, spec: placeholders.PlaceholderSpec, state_root,
                                 now=None) -> tuple[int, int]:
    """Scale the placeholder StatefulSet to what the plans want now; return (was, now).

    The service owns the count while prewarm is on: it always converges on the
    chart's own count plus the running plans (a helm upgrade sets the same base)."""
    now = now or utcnow()
    plans = await asyncio.to_thread(placeholders.read_plans, state_root)
    desired = placeholders.desired_replicas(plans, spec, now)
    current = await scaler.replicas()
    if current != desired:
        await scaler.scale(desired)
        running = ", ".join(p.workshop for p in plans if p.active(now)) or "none"
        lens.log.info("class prewarm: user placeholders %d -> %d (plans running: %s)", current, desired, running)
    return current, desired


def setup(lens, prefix: str) -> list[tuple]:
    every = float(os.environ.get("LENS_WORKSHOP_EXPIRY_EVERY", "30") or 30)
    lens.add_periodic(every, lambda: expire_servers(lens))
    spec_json = os.environ.get(placeholders.SPEC_ENV)
    if spec_json:
        from ..clients.kube import StatefulSetScale

        spec = placeholders.PlaceholderSpec.from_json(spec_json)  # a broken chart value stops the service
        scaler = StatefulSetScale(spec.statefulset, spec.namespace)
        state_root = os.environ.get("LENS_STATE_DIR", "state")
        lens.add_periodic(float(os.environ.get("LENS_PLACEHOLDER_EVERY", "60") or 60),
                          lambda: reconcile_placeholders(lens, scaler, spec, state_root))
    return [(rf"{prefix}api/workshops/({NAME_RE.pattern[1:-1]})/seats", SeatsHandler)]
