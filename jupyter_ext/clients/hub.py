"""The JupyterHub REST API (``.../hub/api``) as lens calls it."""

from __future__ import annotations

import os

from .base import PeerClient, path


def default_hub_api_url() -> str:
    return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")


def server_path(user: str, server: str = "") -> str:
    """The API path of a user's default ('') or named server."""
    return path("users", user, "servers", server) if server else path("users", user, "server")


class HubClient(PeerClient):
    """``HubClient(api_url, token)``; ``api_url`` ends in ``/hub/api``.

    ``HubClient.from_env()`` is the one a hub service uses (its own token)."""

    peer = "hub"

    @classmethod
    def from_env(cls, **kwargs) -> HubClient:
        return cls(default_hub_api_url(), os.environ.get("JUPYTERHUB_API_TOKEN", ""), **kwargs)

    async def info(self) -> dict:
        return await self.request("GET", "")

    async def whoami(self) -> dict:
        return await self.request("GET", "user")

    async def get_user(self, name: str) -> dict | None:
        return await self.get_or_none(path("users", name))

    async def create_user(self, name: str) -> bool:
        """True when created, False when it existed."""
        return (await self.call("POST", path("users", name), accept=(409,))).status == 201

    async def active_users(self, page: int = 200) -> dict[str, list[str]]:
        """User name -> names of their running servers ('' is the default)."""
        found: dict[str, list[str]] = {}
        offset = 0
        while True:
            rows = await self.request("GET", path("users", params={"state": "active", "offset": offset,
                                                                   "limit": page})) or []
            for user in rows:
                found[user["name"]] = list((user.get("servers") or {}).keys())
            if len(rows) < page:
                return found
            offset += page

    async def start_server(self, user: str, options: dict, server: str = "") -> int:
        """Ask the hub to start it; the status (201 ready, 202 pending, 400 already running or
        pending). The hub answers 202 after its slow_spawn_timeout, so this may take seconds."""
        return (await self.call("POST", server_path(user, server), options, accept=(400,),
                                request_timeout=max(self.timeout, 60))).status

    async def stop_server(self, user: str, server: str = "") -> int:
        """Ask the hub to stop it; the status (202 pending, 204 stopped, 400/404: none)."""
        return (await self.call("DELETE", server_path(user, server), accept=(400, 404))).status

    async def get_group(self, name: str) -> dict | None:
        return await self.get_or_none(path("groups", name))

    async def create_group(self, name: str) -> bool:
        return (await self.call("POST", path("groups", name), accept=(409,))).status == 201

    async def add_group_users(self, group: str, names: list[str]) -> None:
        await self.request("POST", path("groups", group, "users"), {"users": list(names)})

    async def remove_group_users(self, group: str, names: list[str]) -> None:
        await self.request("DELETE", path("groups", group, "users"), {"users": list(names)})

    async def user_tokens(self, name: str) -> dict | None:
        return await self.get_or_none(path("users", name, "tokens"))

    async def delete_token(self, name: str, token_id: str) -> None:
        await self.call("DELETE", path("users", name, "tokens", token_id), accept=(404,))

    # -- sharing (JupyterHub >= 5: /shares/OWNER/SERVER; '' is the default server) ----------
    async def share_server(self, owner: str, server: str, *, user: str | None = None,
                           group: str | None = None) -> dict:
        """Grant access to OWNER's SERVER to one user or one group; the share's model."""
        return await self.request("POST", share_path(owner, server), share_target(user, group))

    async def revoke_share(self, owner: str, server: str, *, user: str | None = None,
                           group: str | None = None) -> None:
        """Take a user's or group's access away (every scope of the share)."""
        await self.request("PATCH", share_path(owner, server), share_target(user, group))

    async def revoke_all_shares(self, owner: str, server: str) -> None:
        await self.call("DELETE", share_path(owner, server))

    async def server_shares(self, owner: str, server: str) -> list[dict]:
        return (await self.request("GET", share_path(owner, server)) or {}).get("items", [])

    async def shared_with(self, user: str) -> list[dict]:
        """The servers shared with USER directly (group shares: ``group_shared_with``)."""
        return (await self.request("GET", path("users", user, "shared")) or {}).get("items", [])

    async def group_shared_with(self, group: str) -> list[dict]:
        return (await self.request("GET", path("groups", group, "shared")) or {}).get("items", [])


def share_path(owner: str, server: str = "") -> str:
    # the default server's share URL keeps its trailing slash: /shares/alice/
    return path("shares", owner) + "/" + (path(server) if server else "")


def share_target(user: str | None, group: str | None) -> dict:
    if bool(user) == bool(group):
        raise ValueError("name exactly one user or one group")
    return {"user": user} if user else {"group": group}
