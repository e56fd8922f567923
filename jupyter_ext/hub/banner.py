"""Budget alerts as the hub's announcement banner (every hub page: home, spawn, token...).

JupyterHub calls a callable ``template_vars`` value with the current user on
every page render, synchronously. So the banner never waits on the network:
it renders from a cache of the lens service's standing alerts
(``GET api/budget/alerts``, one call for the whole hub) and, when the cache is
older than ``ttl`` seconds, starts a refresh in the background. A lens service
that is down leaves the last alerts showing, and never breaks a page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from html import escape

from jupyter_ext.clients.lens import LensClient

from ..costs.money import usd

log = logging.getLogger("lens.banner")


def alert_line(alert: dict, username: str) -> str:
    """One alert in words for ``username`` (their own account, or one of their groups)."""
    kind, _, name = alert["account"].partition(":")
    whose = "Your budget" if (kind, name) == ("user", username) else f"The budget of group {name}"
    spent, budget = usd(int(alert["spent_micro"])), usd(int(alert["budget_micro"]))
    period = alert["period_key"]
    if alert.get("blocked"):
        return (f"{whose} for {period} is used up ({spent} of {budget}): new servers, jobs and "
                "Dask clusters are refused until an admin raises it or allows an override.")
    return f"{whose} for {period} has passed {alert['threshold']}%: {spent} of {budget} used."


def render_banner(alerts: list[dict], username: str, groups=(), base: str = "") -> str:
    """HTML for the announcement slot: ``base`` (the operator's own text) plus this user's alerts."""
    mine = {f"user:{username}", *(f"group:{g}" for g in groups)}
    lines = [alert_line(a, username) for a in alerts if a.get("account") in mine]
    parts = [base] if base else []
    if lines:
        text = "<br>".join(escape(line) for line in lines)
        parts.append(f'<div class="lens-budget-alert"><strong>Budget:</strong> {text}</div>')
    return "".join(parts)


class BudgetBanner:
    """``c.JupyterHub.template_vars["announcement"] = BudgetBanner(url, token)``."""

    def __init__(self, service_url: str, token: str, *, base: str = "", ttl: float = 10.0,
                 timeout: float = 5.0):
        self.service = LensClient(service_url, token, timeout=timeout, attempts=1)
        self.token, self.base, self.ttl = token, base, ttl
        self.alerts: list[dict] = []
        self.fetched_at = float("-inf")
        self._task: asyncio.Task | None = None

    def __call__(self, user) -> str:
        self._refresh_soon()
        if user is None:
            return self.base
        groups = [g.name for g in getattr(user, "groups", [])]
        return render_banner(self.alerts, user.name, groups, self.base)

    def _refresh_soon(self) -> None:
        if not self.token or time.monotonic() - self.fetched_at < self.ttl:
            return
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # rendered outside the hub's loop (tests, tools): keep the cache
            return
        self._task = loop.create_task(self.refresh())

    async def refresh(self) -> None:
        self.fetched_at = time.monotonic()  # one attempt per ttl, also when it fails
        try:
            self.alerts = await self.service.budget_alerts()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the banner is best-effort; keep the last alerts
            log.warning("budget banner: lens service alerts unavailable: %s", exc)
