"""A guest's open connections end when their access does (a revoked share).

JupyterHub checks a request's token when it arrives (and the server trusts the
answer ``HubOAuth.cache_max_age`` seconds). A websocket is one request: the
shared notebook's collaboration room, a kernel, a terminal stay open for as
long as the guest keeps the page, whatever happens to the share. So every
websocket opened by someone other than the server's owner is remembered, and
re-checked with the hub every few seconds; once the hub no longer grants its
token access to this server, it is closed (code 4403). JupyterLab then tries to
reconnect, and that new request gets the 403 every other request gets.

The owner's own connections are never re-checked: the owner's access to their
server does not depend on a share.
"""

from __future__ import annotations

import logging
import weakref

from jupyter_ext.upstream import check

log = logging.getLogger("lens.guests")

REVOKED_CODE = 4403  # a private websocket close code (4000-4999): access revoked
_guests: weakref.WeakSet = weakref.WeakSet()


def hub_user_of(handler) -> dict | None:
    """The hub's user model that authenticated HANDLER's request (JupyterHub's HubAuth keeps it)."""
    model = getattr(handler, "_cached_hub_user", None)
    return model if isinstance(model, dict) else None


def is_guest(model: dict | None, owner: str) -> bool:
    return bool(model) and model.get("name") != owner


def track_guest_websockets(owner: str) -> bool:
    """Remember every websocket a guest of OWNER's server opens (tornado's WebSocketHandler.get,
    which every Jupyter websocket handler ends in, runs after authentication)."""
    if not check("tornado.websocket-get", log) or not check("jupyterhub.cached-hub-user", log):
        return False
    from tornado.websocket import WebSocketHandler

    if getattr(WebSocketHandler.get, "_lens_guests", False):
        return True
    upstream_get = WebSocketHandler.get

    async def get(self, *args, **kwargs):
        if is_guest(hub_user_of(self), owner):
            _guests.add(self)
        return await upstream_get(self, *args, **kwargs)

    get._lens_guests = True
    WebSocketHandler.get = get
    return True


def open_guest_sockets() -> list:
    return [h for h in list(_guests) if h.ws_connection is not None and not h.ws_connection.is_closing()]


async def close_revoked(hub_auth) -> int:
    """Ask the hub again about each open guest websocket; close those it no longer lets in.
    Returns how many were closed. A hub that cannot be reached closes nothing (next round)."""
    closed = 0
    for handler in open_guest_sockets():
        handler.__dict__.pop("_cached_hub_user", None)  # HubAuth answers once per request otherwise
        try:
            model = await hub_auth.get_user(handler, sync=False)
        except Exception as exc:  # the hub is restarting: keep the socket, ask again later
            log.warning("could not re-check a guest's connection: %s", exc)
            continue
        if model and hub_auth.check_scopes(hub_auth.access_scopes, model):
            continue
        log.info("closing a websocket of %s: their access to this server was revoked",
                 (model or {}).get("name", "a guest"))
        handler.close(REVOKED_CODE, "access to this server was revoked")
        _guests.discard(handler)
        closed += 1
    return closed
