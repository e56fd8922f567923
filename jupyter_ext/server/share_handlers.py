"""/lens/api/shares: who this server is shared with, share it, revoke (the lens panel's Sharing tab).

Only the server's owner manages its shares: a guest (someone it is shared with)
gets 403 here, though they may use everything else in it. The hub is called
with this server's own token, whose scopes include sharing its owner's servers
(``jupyter_ext.hub.sharing.SHARING_SCOPES``).
"""

from __future__ import annotations

import json
import os

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext.clients.base import PeerError
from jupyter_ext.clients.hub import HubClient
from jupyter_ext.server.base import LensAPIHandler


def share_request(body: bytes) -> dict:
    """``{"user": NAME}`` or ``{"group": NAME}``, or HTTPError 400 saying what is wrong."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise web.HTTPError(400, "The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise web.HTTPError(400, 'Send {"user": NAME} or {"group": NAME}.')
    user, group = data.get("user"), data.get("group")
    if bool(user) == bool(group) or not isinstance(user or group, str):
        raise web.HTTPError(400, 'Name exactly one user or one group: {"user": NAME} or {"group": NAME}.')
    return {"user": user.strip()} if user else {"group": group.strip()}


class SharesHandler(LensAPIHandler):
    @property
    def owner(self) -> str:
        return os.environ.get("JUPYTERHUB_USER", "")

    @property
    def server(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVER_NAME", "")

    def require_owner(self) -> None:
        if not self.owner:
            raise web.HTTPError(503, "This server does not run under JupyterHub: there is nothing to share.")
        if getattr(self.current_user, "username", None) != self.owner:
            raise web.HTTPError(403, f"Only {self.owner}, whose server this is, can share it or revoke its shares.")

    async def hub_call(self, step):
        try:
            return await step(HubClient.from_env(timeout=15))
        except PeerError as exc:
            # the hub's own words ("No such user: x"); 5xx and unreachable: 502
            self.set_status(exc.status if 400 <= exc.status < 500 else 502)
            self.finish(json.dumps({"message": exc.message}))
            return None

    async def list_model(self, hub) -> dict:
        items = await hub.server_shares(self.owner, self.server)
        return {
            "owner": self.owner,
            "url": f"/user/{self.owner}/{self.server + '/' if self.server else ''}",
            "shares": [
                {"kind": item.get("kind"), "name": (item.get("user") or item.get("group") or {}).get("name"),
                 "created_at": item.get("created_at")}
                for item in items
            ],
        }

    @web.authenticated
    @authorized
    async def get(self):
        self.require_owner()
        model = await self.hub_call(self.list_model)
        if model is not None:
            self.finish(json.dumps(model))

    @web.authenticated
    @authorized
    async def post(self):
        self.require_owner()
        target = share_request(self.request.body)

        async def step(hub):
            await hub.share_server(self.owner, self.server, **target)
            return await self.list_model(hub)

        model = await self.hub_call(step)
        if model is not None:
            self.finish(json.dumps(model))

    @web.authenticated
    @authorized
    async def delete(self):
        self.require_owner()
        target = share_request(self.request.body)

        async def step(hub):
            await hub.revoke_share(self.owner, self.server, **target)
            return await self.list_model(hub)

        model = await self.hub_call(step)
        if model is not None:
            self.finish(json.dumps(model))


def share_handlers() -> list[tuple]:
    return [(r"/lens/api/shares", SharesHandler)]
