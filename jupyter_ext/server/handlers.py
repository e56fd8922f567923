"""REST handlers of the server extension (under /lens/api/)."""

from __future__ import annotations

import json
import os

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext import __version__
from jupyter_ext.clients.base import PeerError
from jupyter_ext.clients.gateway import UserGatewayClient
from jupyter_ext.server.archive_handlers import archive_handlers
from jupyter_ext.server.base import LensAPIHandler
from jupyter_ext.server.dask_lab import dask_lab_handlers
from jupyter_ext.server.share_handlers import share_handlers
from jupyter_ext.server.summary import status_summary


class StatusHandler(LensAPIHandler):
    @web.authenticated
    @authorized
    def get(self):
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "service_url": self.lens_service_url,
                    "profile": os.environ.get("LENS_PROFILE", ""),
                    "hourly_cost": float(os.environ.get("LENS_HOURLY_COST", "0") or 0),
                }
            )
        )


class SummaryHandler(LensAPIHandler):
    """The status bar's one call per refresh: this server's rate and its user's budget."""

    @web.authenticated
    @authorized
    async def get(self):
        hourly = float(os.environ.get("LENS_HOURLY_COST", "0") or 0)
        profile = os.environ.get("LENS_PROFILE", "")
        if not self.lens_service_url:
            raise web.HTTPError(503, "This server has no lens service to ask.")
        try:
            report = await self.lens_client().request("GET", "api/costs")
        except PeerError as exc:
            raise web.HTTPError(exc.status if 400 <= exc.status < 600 else 502, exc.message) from None
        self.finish(json.dumps(status_summary(report, hourly, profile)))


class DaskCostsHandler(LensAPIHandler):
    """This user's running Dask clusters with their rates (the gateway's own figures)."""

    @web.authenticated
    @authorized
    async def get(self):
        client = UserGatewayClient.from_env(timeout=10, attempts=1)
        if not client.base_url:
            self.finish(json.dumps({"clusters": [], "available": False}))
            return
        try:
            clusters = await client.my_cluster_costs()
        except PeerError as exc:
            raise web.HTTPError(exc.status if 400 <= exc.status < 600 else 502, exc.message) from None
        self.finish(json.dumps({"clusters": clusters, "available": True}))


class ServiceCheckHandler(LensAPIHandler):
    """Who the lens service sees when this server calls it (its token and scopes at work)."""

    @web.authenticated
    @authorized
    async def get(self):
        try:
            me = await self.lens_client().me()
        except PeerError as exc:
            raise web.HTTPError(exc.status if 400 <= exc.status < 600 else 502, exc.message) from None
        self.finish(json.dumps(me))


class ServiceForwardHandler(LensAPIHandler):
    """Forward /lens/api/service/<path> to the lens service as this server's user.

    Kernels (magics, widgets) talk only to their own server; the server's hub
    token, not anything the kernel holds, authorizes the call at the service,
    which enforces ownership and budgets.
    """

    FORWARDED = ("jobs", "costs", "archives", "budget", "me", "workshops")

    async def _forward(self, method: str, path: str):
        if path.split("/", 1)[0] not in self.FORWARDED:
            raise web.HTTPError(404, f"No lens service route {path!r}.")
        body = None
        if method in ("POST", "PUT", "PATCH"):
            try:
                body = json.loads(self.request.body or b"{}")
            except ValueError:
                raise web.HTTPError(400, "The request body must be JSON.") from None
        query = self.request.query
        target = f"api/{path}" + (f"?{query}" if query else "")
        try:
            result = await self.lens_client().request(method, target, body)
        except PeerError as exc:
            self.set_status(exc.status if 400 <= exc.status < 600 else 502)
            self.finish(json.dumps({"message": exc.message}))
            return
        self.finish(json.dumps(result if result is not None else {}))

    @web.authenticated
    @authorized
    async def get(self, path):
        await self._forward("GET", path)

    @web.authenticated
    @authorized
    async def post(self, path):
        await self._forward("POST", path)

    @web.authenticated
    @authorized
    async def delete(self, path):
        await self._forward("DELETE", path)


def default_handlers() -> list[tuple]:
    return [
        *archive_handlers(),
        *share_handlers(),
        (r"/lens/api/status", StatusHandler),
        (r"/lens/api/summary", SummaryHandler),
        (r"/lens/api/dask", DaskCostsHandler),
        (r"/lens/api/service-check", ServiceCheckHandler),
        (r"/lens/api/service/(.+)", ServiceForwardHandler),
        *dask_lab_handlers(),  # dask-labextension's routes, its module imported on first use
    ]
