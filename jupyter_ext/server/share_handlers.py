"""/lens/api/shares: who this server is shared with, share it, revoke (the lens panel's Sharing tab).

Only the server's owner manages its shares here: a guest (someone it is shared
with) gets 403, though they may use everything else in it. The call goes on to
the lens service (``api/shares/OWNER[/SERVER]``) with this server's own token.
"""

from __future__ import annotations

import json
import os

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext.clients.base import PeerError, path
from jupyter_ext.server.base import LensAPIHandler


def json_object(body: bytes | None) -> dict:
    """A request body that is a JSON object (none: ``{}``), or 400 before anything is forwarded."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise web.HTTPError(400, "The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise web.HTTPError(400, "The request body must be a JSON object.")
    return data


class SharesHandler(LensAPIHandler):
    def require_owner(self) -> str:
        owner = os.environ.get("JUPYTERHUB_USER", "")
        if not owner:
            raise web.HTTPError(503, "This server does not run under JupyterHub: there is nothing to share.")
        if getattr(self.current_user, "username", None) != owner:
            raise web.HTTPError(403, f"Only {owner}, whose server this is, can share it or revoke its shares.")
        return owner

    async def forward(self, method: str):
        owner = self.require_owner()
        server = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
        body = None
        if method != "GET":
            body = json_object(self.request.body)
        try:
            model = await self.lens_client().request(method, path("api", "shares", owner, *([server] if server else [])),
                                                     body)
        except PeerError as exc:
            self.set_status(exc.status if 400 <= exc.status < 600 else 502)
            self.finish(json.dumps({"message": exc.message}))
            return
        self.finish(json.dumps(model))

    @web.authenticated
    @authorized
    async def get(self):
        await self.forward("GET")

    @web.authenticated
    @authorized
    async def post(self):
        await self.forward("POST")

    @web.authenticated
    @authorized
    async def delete(self):
        await self.forward("DELETE")


def share_handlers() -> list[tuple]:
    return [(r"/lens/api/shares", SharesHandler)]
