"""The service's calls to the hub's REST API, with the service's own token."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest


async def hub_api(method: str, path: str) -> dict | list | None:
    url = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api").rstrip("/") + path
    req = HTTPRequest(
        url,
        method=method,
        headers={"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"},
        request_timeout=20,
        allow_nonstandard_methods=True,
    )
    resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    if resp.code >= 400 and resp.code != 404:
        raise RuntimeError(f"hub {method} {path}: {resp.code} {resp.body[:200]!r}")
    return json.loads(resp.body) if resp.body else None


def server_path(user: str, server: str = "") -> str:
    """The hub API path of a user's default ('') or named server."""
    if server:
        return f"/users/{quote(user)}/servers/{quote(server)}"
    return f"/users/{quote(user)}/server"


async def active_users() -> dict[str, list[str]]:
    """User name -> names of their running servers ('' is the default)."""
    found: dict[str, list[str]] = {}
    offset, limit = 0, 200
    while True:
        page = await hub_api("GET", f"/users?state=active&offset={offset}&limit={limit}") or []
        for user in page:
            found[user["name"]] = list((user.get("servers") or {}).keys())
        if len(page) < limit:
            return found
        offset += limit
