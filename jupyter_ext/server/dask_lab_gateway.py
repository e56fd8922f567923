"""dask-labextension's handlers set up for the lens Dask Gateway.

Imported on the first ``dask/...`` request (``jupyter_ext.server.dask_lab``), never
at server start: it imports dask_labextension, hence dask.distributed.

- The cluster list is the user's clusters as the gateway sees them (lens's
  ``api/v1/lens/costs`` route, called with this server's hub token): clusters made
  in a notebook with ``Gateway()`` / ``GatewayCluster()`` show up as well as those
  made from the panel, each titled with its $/h and cost so far. Another user's
  clusters are not in that answer, so their ids are unknown here (404).
- *New* makes a cluster with dask-labextension's own factory, which lens's servers
  configure (``DASK_LABEXTENSION__FACTORY__*``, set by the spawner) as
  ``dask_gateway.GatewayCluster`` with ``shutdown_on_close=False``: the no-config
  Gateway of a user server.
- Scale, adapt and shut down are the gateway's own REST calls by cluster name.
- Dashboards: ``dask/dashboard/ID/...`` (what the panel opens for a cluster whose
  link is not under this server) is proxied, HTTP and websockets, to the cluster's
  dashboard behind the lens service's owner-only hop, with this server's hub token.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlparse

from dask_labextension.clusterhandler import DaskClusterHandler
from dask_labextension.dashboardhandler import DaskDashboardCheckHandler, DaskDashboardHandler
from dask_labextension.manager import make_cluster
from jupyter_server.auth.decorator import authorized
from jupyter_server_proxy.handlers import ProxyHandler
from tornado import httpclient, web

from jupyter_ext.clients.base import PeerError, path
from jupyter_ext.clients.gateway import UserGatewayClient
from jupyter_ext.server.dask_lab import cluster_model, dashboard_target, scale_change

AUTH_RESOURCE = "lens"


def server_token() -> str:
    return os.environ.get("JUPYTERHUB_API_TOKEN", "")


def public_address(env=os.environ) -> str:
    return env.get("DASK_GATEWAY__PUBLIC_ADDRESS") or env.get("DASK_GATEWAY__ADDRESS", "")


class GatewayClusterManager:
    """dask-labextension's manager interface (list, get, start, close, scale, adapt)
    over the gateway; the models are the last answer of ``refresh``."""

    def __init__(self, env=os.environ):
        self.env = env
        self._models: dict[str, dict] = {}

    def client(self) -> UserGatewayClient:
        return UserGatewayClient(self.env.get("DASK_GATEWAY__ADDRESS", ""), self.env.get("JUPYTERHUB_API_TOKEN", ""),
                                 timeout=15, attempts=1)

    async def refresh(self) -> list[dict]:
        costs = await self.client().my_cluster_costs()
        address, proxy = public_address(self.env), self.env.get("DASK_GATEWAY__PROXY_ADDRESS", "")
        self._models = {m["id"]: m for m in (cluster_model(c, address, proxy) for c in costs)}
        return self.list_clusters()

    def list_clusters(self) -> list[dict]:
        return list(self._models.values())

    def get_cluster(self, cluster_id: str) -> dict | None:
        return self._models.get(cluster_id)

    async def find(self, cluster_id: str) -> dict | None:
        """The model of one of this user's clusters, asking the gateway if it is new."""
        if cluster_id not in self._models:
            await self.refresh()
        return self.get_cluster(cluster_id)

    async def start_cluster(self, configuration: dict | None = None) -> dict:
        cluster, _adaptive = await make_cluster(configuration or {})  # dask config labextension.factory
        name = cluster.name
        await cluster.close()  # the client only: shutdown_on_close is off, the cluster runs on
        await self.refresh()
        model = next((m for m in self._models.values() if m["gateway_name"] == name), None)
        if model is None:
            raise web.HTTPError(502, f"The gateway made cluster {name} but does not list it.")
        return model

    async def close_cluster(self, model: dict) -> None:
        await self.client().request("DELETE", path("api", "v1", "clusters", model["gateway_name"]))
        self._models.pop(model["id"], None)

    async def scale_cluster(self, model: dict, workers: int) -> None:
        await self.client().request("POST", path("api", "v1", "clusters", model["gateway_name"], "scale"),
                                    {"count": int(workers)})

    async def adapt_cluster(self, model: dict, minimum: int, maximum: int) -> None:
        await self.client().request("POST", path("api", "v1", "clusters", model["gateway_name"], "adapt"),
                                    {"minimum": int(minimum), "maximum": int(maximum), "active": True})


manager = GatewayClusterManager()


def _peer_error(exc: PeerError) -> web.HTTPError:
    return web.HTTPError(exc.status if 400 <= exc.status < 600 else 502, exc.message)


class GatewayClusterHandler(DaskClusterHandler):
    """dask-labextension's ``dask/clusters[/ID]`` API on the gateway (same requests
    and answers as upstream's handler, which works on in-process clusters)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, cluster_id: str = "") -> None:
        try:
            models = await manager.refresh()
        except PeerError as exc:
            raise _peer_error(exc) from None
        if not cluster_id:
            self.finish(json.dumps(models))
            return
        model = manager.get_cluster(cluster_id)
        if model is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        self.finish(json.dumps(model))

    @web.authenticated
    @authorized
    async def put(self, cluster_id: str = "") -> None:
        try:
            model = await manager.start_cluster()
        except PeerError as exc:
            raise _peer_error(exc) from None
        except web.HTTPError:
            raise
        except Exception as exc:  # the gateway refused (limits, budget): its message
            raise web.HTTPError(400, str(exc) or type(exc).__name__) from None
        self.finish(json.dumps(model))

    @web.authenticated
    @authorized
    async def delete(self, cluster_id: str) -> None:
        try:
            model = await manager.find(cluster_id)
            if model is None:
                raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
            await manager.close_cluster(model)
        except PeerError as exc:
            raise _peer_error(exc) from None
        self.set_status(204)
        self.finish()

    @web.authenticated
    @authorized
    async def patch(self, cluster_id: str) -> None:
        try:
            change = scale_change(self.request.body)
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        try:
            model = await manager.find(cluster_id)
            if model is None:
                raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
            if "adapt" in change:
                await manager.adapt_cluster(model, change["adapt"]["minimum"], change["adapt"]["maximum"])
            else:
                await manager.scale_cluster(model, change["workers"])
            model = {**model, **change}
        except PeerError as exc:
            raise _peer_error(exc) from None
        self.finish(json.dumps(model))


class GatewayDashboardHandler(DaskDashboardHandler):
    """``dask/dashboard/ID/PATH`` -> the cluster's dashboard behind the lens hop.

    The browser's cookies and credentials are not passed on; this server's hub token
    is (the hop lets only the cluster's owner in, and strips it before the scheduler)."""

    _name = ""

    async def _cluster(self, cluster_id: str) -> tuple[str, int]:
        try:
            model = await manager.find(cluster_id)
        except PeerError as exc:
            raise _peer_error(exc) from None
        if model is None:
            raise web.HTTPError(404, f"Dask cluster {cluster_id} not found")
        self._name = model["gateway_name"]
        parsed = urlparse(public_address())
        self.host_allowlist = [parsed.hostname]
        return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)

    async def proxy(self, cluster_id, proxied_path):
        host, port = await self._cluster(cluster_id)
        return await ProxyHandler.proxy(self, host, port, proxied_path)

    async def open(self, cluster_id, proxied_path):
        host, port = await self._cluster(cluster_id)
        return await ProxyHandler.proxy_open(self, host, port, proxied_path)

    def get_client_uri(self, protocol, host, port, proxied_path):
        uri = dashboard_target(public_address(), self._name, proxied_path, protocol)
        return uri + ("?" + self.request.query if self.request.query else "")

    def proxy_request_headers(self):
        headers = self.request.headers.copy()
        for name in ("Cookie", "Authorization", "Host"):
            headers.pop(name, None)
        headers["Authorization"] = f"token {server_token()}"
        return headers

    def _rewrite_location_header(self, location, host, port, proxied_path):
        return location  # the hop's and scheduler's redirects stay on the hub (the hop serves them)


class GatewayDashboardCheckHandler(DaskDashboardCheckHandler):
    """Upstream's check, plus the hop's login for this user's gateway dashboards
    (a URL pasted into the panel): fetched with this server's hub token."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, url) -> None:
        link = unquote(url)
        prefix = public_address().rstrip("/") + "/clusters/"
        if not public_address() or not link.startswith(prefix):
            await super().get(url)
            return
        base = link.removesuffix("/").removesuffix("/status")
        try:
            response = await httpclient.AsyncHTTPClient().fetch(
                base + "/individual-plots.json", headers={"Authorization": f"token {server_token()}"},
                follow_redirects=False, request_timeout=15)
            plots = json.loads(response.body)
            answer = {"url": base, "isActive": True, "effectiveUrl": None, "plots": plots}
        except (httpclient.HTTPError, OSError, ValueError):
            answer = {"url": base, "isActive": False, "plots": {}}
        self.finish(json.dumps(answer))
