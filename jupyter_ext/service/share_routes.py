"""Sharing routes of the lens service: a user shares their own server by name.

- ``GET api/shares``: the servers shared with the caller (directly and through their groups).
- ``GET api/shares/OWNER[/SERVER]``: whom OWNER's server is shared with.
- ``POST api/shares/OWNER[/SERVER]`` ``{"user": NAME}`` or ``{"group": NAME}``: share it.
- ``DELETE api/shares/OWNER[/SERVER]`` with the same body: revoke; ``{"all": true}``: every share.

OWNER themself or an admin; anyone else gets 403. The share is JupyterHub's
(``/hub/api/shares``), made with this service's token. JupyterHub asks whoever
shares by name for ``read:users:name`` / ``read:groups:name``; granting those
to every user would let anyone look up any user's or group's existence over the
hub's API, so the names are resolved here, for the owner's own server only.
"""

from __future__ import annotations

from tornado import web

from ..clients.base import PeerError
from .base import LensHandler

MAX_NAME = 255


def share_target(body: dict) -> dict:
    """``{"user": NAME}`` or ``{"group": NAME}`` from a request body, or 400 saying what is wrong."""
    user, group = body.get("user"), body.get("group")
    if bool(user) == bool(group) or not isinstance(user or group, str):
        raise web.HTTPError(400, 'Name exactly one user or one group: {"user": NAME} or {"group": NAME}.')
    kind, name = ("user", user) if user else ("group", group)
    name = name.strip()
    # checked here: a blank name would reach the hub client's own check (a 500), and
    # control characters only end up in logs
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise web.HTTPError(400, f"A {kind} name is 1 to {MAX_NAME} characters, none of them control characters.")
    return {kind: name}


def revoke_body(body: dict) -> dict:
    """DELETE's body: ``{"all": true}`` alone, or one user or group (``share_target``)."""
    if "all" not in body:
        return share_target(body)
    if body["all"] is not True or body.get("user") or body.get("group"):
        raise web.HTTPError(400, 'Revoke every share with {"all": true} alone, or one with {"user": NAME} '
                                 'or {"group": NAME}.')
    return {"all": True}


def server_url(owner: str, server: str) -> str:
    return f"/user/{owner}/{server + '/' if server else ''}"


def share_rows(items: list[dict]) -> list[dict]:
    return [
        {"kind": item.get("kind"), "name": (item.get("user") or item.get("group") or {}).get("name"),
         "created_at": item.get("created_at")}
        for item in items
    ]


def has_share(items: list[dict], kind: str, name: str) -> bool:
    return any(row["kind"] == kind and row["name"] == name for row in share_rows(items))


class ServerSharesHandler(LensHandler):
    def require_owner(self, owner: str) -> dict:
        who = self.require_identity()
        if self.is_admin or (who.get("kind") == "user" and who.get("name") == owner):
            return who
        # ("%s", text): names from the URL may hold '%', which tornado's log line would format
        raise web.HTTPError(403, "%s", f"Only {owner}, whose server it is, or an admin may share it or revoke "
                                       "its shares.")

    async def hub_step(self, step):
        try:
            return await step(self.lens.hub)
        except PeerError as exc:
            # the hub's own words: "No such user: x", "No such server: alice/x"
            status = exc.status if exc.status in (400, 404) else 502
            raise web.HTTPError(status, "%s", exc.message) from None

    async def model(self, hub, owner: str, server: str) -> dict:
        return {"owner": owner, "server": server, "url": server_url(owner, server),
                "shares": share_rows(await hub.server_shares(owner, server))}

    async def get(self, owner, server=None):
        self.require_owner(owner)
        server = server or ""
        self.write_json(await self.hub_step(lambda hub: self.model(hub, owner, server)))

    async def post(self, owner, server=None):
        who = self.require_owner(owner)
        server, target = server or "", share_target(self.json_body())

        async def step(hub):
            await hub.share_server(owner, server, **target)
            return await self.model(hub, owner, server)

        model = await self.hub_step(step)
        self.log.info("%s shared %s with %s", who.get("name"), server_url(owner, server), target)
        self.write_json(model)

    async def delete(self, owner, server=None):
        who = self.require_owner(owner)
        server, body = server or "", revoke_body(self.json_body())

        async def step(hub):
            if body.get("all"):
                await hub.revoke_all_shares(owner, server)
            else:
                # the hub takes revoking a share that is not there (a typo) as done: say so instead
                (kind, name), = body.items()
                if not has_share(await hub.server_shares(owner, server), kind, name):
                    raise web.HTTPError(404, "%s", f"{server_url(owner, server)} is not shared with {kind} {name}.")
                await hub.revoke_share(owner, server, **body)
            return await self.model(hub, owner, server)

        model = await self.hub_step(step)
        self.log.info("%s revoked %s of %s", who.get("name"), "every share" if body.get("all") else body,
                      server_url(owner, server))
        self.write_json(model)


class SharedWithMeHandler(LensHandler):
    async def get(self):
        who = self.require_identity()
        if who.get("kind") != "user":
            raise web.HTTPError(400, "Only users have servers shared with them.")
        hub = self.lens.hub
        try:
            items = await hub.shared_with(who["name"])
            for group in who.get("groups") or []:
                items += await hub.group_shared_with(group)
        except PeerError as exc:
            raise web.HTTPError(502, "%s", exc.message) from None
        servers = {}
        for item in items:
            srv = item.get("server") or {}
            owner = (srv.get("user") or {}).get("name", "")
            url = srv.get("url") or server_url(owner, srv.get("name") or "")
            via = f"group {item['group']['name']}" if item.get("group") else "you"
            servers.setdefault(url, {"url": url, "owner": owner, "ready": srv.get("ready"), "via": []})["via"].append(via)
        self.write_json({"servers": sorted(servers.values(), key=lambda s: s["url"])})


def setup(lens, prefix: str) -> list[tuple]:
    return [
        (rf"{prefix}api/shares", SharedWithMeHandler),
        (rf"{prefix}api/shares/([^/]+)/?", ServerSharesHandler),
        (rf"{prefix}api/shares/([^/]+)/([^/]+)", ServerSharesHandler),
    ]
