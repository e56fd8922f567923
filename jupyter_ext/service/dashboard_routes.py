"""The Dask dashboards, behind hub authentication and an ownership check.

dask-gateway's proxy serves each cluster's scheduler dashboard under
``/services/dask-gateway/clusters/NAME/`` to anyone who knows NAME (its
upstream design). The hub's proxy therefore routes that prefix here instead
(``c.Proxy.extra_routes``, hub_config/jupyterhub_config.py), and this hop lets
through only the cluster's owner, then streams HTTP and websockets to the
gateway's proxy unchanged:

- who: a hub token (``Authorization: token``, ``?token=``) or the browser's hub
  login (OAuth through the hub, then the dashboard cookie of ``LensHubOAuth``);
- whose: the gateway says who owns NAME (``GET /api/v1/lens/clusters/NAME/owner``,
  cached: a cluster never changes owner); anyone else gets 403;
- what goes on: the request as it came, minus the hub credentials (tokens,
  cookies), which the scheduler (it runs the user's code) never sees.

Enabled by ``LENS_DASK_DASHBOARDS`` (the prefix) with ``LENS_GATEWAY_TOKEN``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import OrderedDict
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import aiohttp
from jupyterhub.services.auth import UserNotAllowed
from tornado import httputil, web, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

from ..clients.gateway import GatewayClient, default_gateway_url
from .base import LensHandler

# Never forwarded: hop-by-hop headers, and the hub credentials the hop itself consumed.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "authorization",
})
WS_HANDSHAKE = frozenset({
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- pure rules ---------------------------------------------------------------
def without_credentials(query: str) -> str:
    """The query string minus ``token=`` (the hub token some clients put in the URL)."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return urlencode(pairs)


def forwarded_cookies(header: str, hub_cookie: re.Pattern) -> str:
    """The Cookie header minus every hub and lens login cookie (``hub_cookie`` names them)."""
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed header: forward no cookies at all
        return ""
    return "; ".join(f"{k}={m.value}" for k, m in jar.items() if not hub_cookie.match(k))


def upstream_headers(headers: httputil.HTTPHeaders, hub_cookie: re.Pattern, websocket: bool) -> httputil.HTTPHeaders:
    out = httputil.HTTPHeaders()
    for name, value in headers.get_all():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower == "cookie" or (websocket and lower in WS_HANDSHAKE):
            continue
        out.add(name, value)
    cookies = forwarded_cookies("; ".join(headers.get_list("Cookie")), hub_cookie)
    if cookies:
        out["Cookie"] = cookies
    return out


def escapes_its_cluster(path: str) -> bool:
    """True for a path that could leave the cluster it names once a later hop cleans it
    up: ``clusters/MINE/../THEIRS/`` (dot segments, also percent-encoded) or an encoded
    slash or backslash. The owner check is on the name as written, so such paths are refused."""
    lowered = path.lower()
    if any(code in lowered for code in ("%2f", "%5c", "\\")):
        return True
    return any(unquote(segment) in (".", "..") for segment in path.split("/"))


class OwnerCache:
    """Cluster name -> owner, bounded; only answers the gateway gave are kept (a
    cluster never changes owner, and an unknown one may be created a moment later)."""

    def __init__(self, lookup, size: int = 4096):
        self.lookup, self.size = lookup, size
        self.owners: OrderedDict[str, str] = OrderedDict()

    async def owner(self, name: str) -> str | None:
        if name in self.owners:
            self.owners.move_to_end(name)
            return self.owners[name]
        owner = await self.lookup(name)
        if owner is not None:
            self.owners[name] = owner
            if len(self.owners) > self.size:
                self.owners.popitem(last=False)
        return owner


# -- the hop --------------------------------------------------------------------
class DashboardHandler(LensHandler, websocket.WebSocketHandler):
    """``PREFIX/NAME/...``: HTTP and websockets of cluster NAME's dashboard, for its owner."""

    def initialize(self, hop):
        self.hop = hop
        self.upstream_ws = None

    async def prepare(self):
        await super().prepare()  # a hub token in the header or URL
        # (not self.current_user yet: tornado would cache the None)
        if getattr(self, "_hub_auth_user_cache", None) is None and self.request.method in ("GET", "HEAD"):
            # the browser's login: the dashboard cookie (LensHubOAuth.set_cookie)
            token = self.hub_auth.dashboard_token(self)
            model = await self.hub_auth.user_for_token(token, sync=False) if token else None
            if model:
                try:
                    self._hub_auth_user_cache = self.check_hub_user(model)
                except UserNotAllowed:
                    pass
        await self.authorize()

    async def authorize(self) -> None:
        name = self.path_args[0]
        if escapes_its_cluster(self.request.path):
            raise web.HTTPError(400, "Dot segments and encoded slashes are not allowed in dashboard paths.")
        who = self.current_user
        if who is None:
            browser = self.request.method == "GET" and not self.is_websocket and "text/html" in \
                self.request.headers.get("Accept", "")
            if browser:  # a browser: through the hub's login, back to this page
                self.redirect(self.get_login_url())
                raise web.Finish()
            raise web.HTTPError(401, "Log in to the hub, or send a hub token, to see a Dask dashboard.")
        owner = await self.hop.owners.owner(name)
        if who.get("kind") != "user" or owner != who.get("name"):
            # another user's cluster and an unknown one look alike
            raise web.HTTPError(403, "This is not one of your Dask clusters.")

    @property
    def is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    def upstream_url(self, scheme: str = "http") -> str:
        query = without_credentials(self.request.query)
        return f"{scheme}://{self.hop.upstream}{self.request.path}" + (f"?{query}" if query else "")

    # -- HTTP ------------------------------------------------------------------
    async def get(self, name, rest=None):
        if self.is_websocket:
            return await websocket.WebSocketHandler.get(self, name, rest)
        await self.proxy_http()

    async def head(self, *args):
        await self.proxy_http()

    async def post(self, *args):
        await self.proxy_http()

    put = patch = delete = options = post

    async def proxy_http(self) -> None:
        """Stream the answer through as it comes (dashboards poll and stream a lot),
        over pooled keep-alive connections to the gateway's proxy."""
        body = self.request.body if self.request.method in BODY_METHODS else None
        headers = list(upstream_headers(self.request.headers, self.hop.hub_cookie, websocket=False).get_all())
        started = False
        try:
            async with self.hop.session().request(
                self.request.method, self.upstream_url(), headers=headers, data=body,
                allow_redirects=False, timeout=self.hop.timeout,
            ) as response:
                self.set_status(response.status, response.reason)
                self.clear_header("Content-Type")
                bodiless = self.request.method == "HEAD" or response.status in (204, 304)
                for name, value in response.headers.items():
                    lower = name.lower()
                    if lower in HOP_BY_HOP or (bodiless and lower == "content-length"):
                        continue
                    self.add_header(name, value)
                started = True
                async for chunk in response.content.iter_any():
                    self.write(chunk)
                    await self.flush()  # backpressure: read on only as fast as the browser takes it
        except StreamClosedError:
            return  # the browser went away: leaving the block closed the upstream request
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if started:
                raise web.Finish() from None  # cut off mid-stream: nothing more to say
            self.log.warning("Dask dashboard %s unreachable: %s", self.path_args[0], exc)
            raise web.HTTPError(502, "The cluster's dashboard is not reachable (is the cluster running?).") from None
        self.finish()

    # -- websockets ------------------------------------------------------------
    def select_subprotocol(self, subprotocols):
        return subprotocols[0] if subprotocols else None  # Bokeh's "bokeh", token

    async def open(self, *args):
        request = HTTPRequest(
            self.upstream_url("ws"), connect_timeout=10, request_timeout=30,
            headers=upstream_headers(self.request.headers, self.hop.hub_cookie, websocket=True),
        )
        protocols = [p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            self.upstream_ws = await websocket.websocket_connect(
                request, subprotocols=protocols or None, max_message_size=self.hop.max_message_size)
        except (OSError, HTTPClientError, websocket.WebSocketError) as exc:
            self.log.warning("Dask dashboard websocket %s unreachable: %s", self.request.path, exc)
            self.close(1011, "The cluster's dashboard is not reachable.")
            return
        asyncio.ensure_future(self.pump_down(self.upstream_ws))

    async def pump_down(self, upstream) -> None:
        while True:
            message = await upstream.read_message()
            if message is None:
                self.close(upstream.close_code or 1000, upstream.close_reason)
                return
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                upstream.close()
                return

    async def on_message(self, message):
        if self.upstream_ws is not None:
            try:
                await self.upstream_ws.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                self.close(1011)

    def on_ping(self, data):
        if self.upstream_ws is not None:
            self.upstream_ws.ping(data)

    def on_close(self):
        if self.upstream_ws is not None:
            self.upstream_ws.close(self.close_code, self.close_reason)
            self.upstream_ws = None

    def get_compression_options(self):
        return None


class DashboardHop:
    """What the handlers share: the gateway's proxy, the owner cache, one HTTP client."""

    def __init__(self, gateway: GatewayClient, upstream: str, cookie_names: list[str],
                 read_timeout: float = 3600.0, max_message_size: int = 100 * 2**20):
        self.owners = OwnerCache(gateway.cluster_owner)
        self.upstream = upstream  # host:port of the gateway's proxy
        self.hub_cookie = re.compile(
            r"^(jupyterhub-|_xsrf$|" + "|".join(re.escape(c) for c in cookie_names) + ")")
        self.timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=read_timeout)
        self.max_message_size = max_message_size
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """aiohttp, not tornado's client: it keeps connections alive (a new TCP connection
        per request doubled the hop's cost) and does not queue past 10 requests. Bodies
        pass as they are (compressed or not): the browser decodes them."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=256),
            )
        return self._session


def setup(lens, prefix: str) -> list[tuple]:
    dashboards = os.environ.get("LENS_DASK_DASHBOARDS", "")
    token = os.environ.get("LENS_GATEWAY_TOKEN", "")
    if not dashboards or not token:
        return []
    dashboards = "/" + dashboards.strip("/") + "/"
    gateway = GatewayClient(default_gateway_url(), token, timeout=10)
    auth = lens.hub_auth
    auth.dashboard_cookie_path = dashboards
    hop = DashboardHop(gateway, urlsplit(default_gateway_url()).netloc,
                       [auth.cookie_name, auth.dashboard_cookie_name])
    lens.dashboard_hop = hop
    return [(rf"{re.escape(dashboards)}([^/]+)(/.*)?", DashboardHandler, {"hop": hop})]
