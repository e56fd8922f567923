"""The CLI's hub calls (``lens workshop``): steps over the one hub client, run synchronously.

Every HTTP rule (timeouts, retries, quoting, errors) is ``jupyter_ext.clients``';
this only composes calls into the steps the workshop operations need.
"""

from __future__ import annotations

import time

from jupyter_ext.clients.base import PeerError, Sync
from jupyter_ext.clients.hub import HubClient

HubAPIError = PeerError  # what the workshop commands catch


class HubAPI:
    """``HubAPI(hub_url, token)``: ``hub_url`` is the hub's public address (``.../hub/api`` is added)."""

    def __init__(self, url: str, token: str, timeout: float = 30):
        self.url = url.rstrip("/")
        self.hub = Sync(HubClient(f"{self.url}/hub/api", token, timeout=timeout))

    def check(self) -> None:
        self.hub.info()
        who = self.hub.whoami()
        if who.get("kind") != "service" and not who.get("admin"):
            scopes = set(who.get("scopes", []))
            if not {"admin:users", "admin:groups"} <= scopes:
                raise PeerError("hub", 403, "the token needs admin:users, admin:groups and admin:servers "
                                "(the lens-admin service)")

    def ensure_group(self, name: str) -> bool:
        return self.hub.create_group(name)

    def group(self, name: str) -> dict | None:
        """The group's model, or None when the hub has no such group."""
        return self.hub.get_group(name)

    def group_members(self, name: str) -> list[str]:
        return (self.hub.get_group(name) or {}).get("users", [])

    def existing_users(self, names: list[str]) -> list[str]:
        """Those of ``names`` the hub already has."""
        return [name for name in names if self.hub.get_user(name) is not None]

    def ensure_users(self, names: list[str]) -> list[str]:
        return [name for name in names if self.hub.create_user(name)]

    def add_to_group(self, group: str, names: list[str]) -> None:
        if names:
            self.hub.add_group_users(group, names)

    def remove_from_group(self, group: str, names: list[str]) -> None:
        if names:
            self.hub.remove_group_users(group, names)

    def user(self, name: str) -> dict | None:
        return self.hub.get_user(name)

    def start_server(self, name: str, options: dict) -> int:
        return self.hub.start_server(name, options)

    def stop_servers(self, names: list[str], timeout: float = 60) -> list[str]:
        """Stop every server of these users; return those that had one."""
        had = []
        for name in names:
            for server in (self.user(name) or {}).get("servers", {}):
                self.hub.stop_server(name, server)
                had.append(name)
        deadline = time.monotonic() + timeout
        pending = set(had)
        while pending and time.monotonic() < deadline:
            pending = {n for n in pending if (self.user(n) or {}).get("servers")}
            if pending:
                time.sleep(0.3)
        if pending:
            raise PeerError("hub", 504, f"servers did not stop within {timeout:.0f}s: {', '.join(sorted(pending))}")
        return sorted(set(had))

    def revoke_tokens(self, name: str) -> int:
        """Drop the user's API and OAuth tokens, so open browser tabs lose access."""
        found = self.hub.user_tokens(name)
        if not found:
            return 0
        tokens = found.get("api_tokens", []) + found.get("oauth_tokens", [])
        for t in tokens:
            self.hub.delete_token(name, t["id"])
        return len(tokens)

    def has_role(self, user: str, role: str) -> bool:
        return role in ((self.user(user) or {}).get("roles") or [])
