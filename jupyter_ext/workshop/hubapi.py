"""A small synchronous client of the JupyterHub REST API for the CLI."""

from __future__ import annotations

import time

import requests


class HubAPIError(RuntimeError):
    pass


class HubAPI:
    def __init__(self, url: str, token: str, timeout: float = 30):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def call(self, method: str, path: str, ok=(200, 201, 202, 204), **kwargs) -> requests.Response:
        try:
            r = self.session.request(method, f"{self.url}/hub/api{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise HubAPIError(f"the hub at {self.url} is unreachable: {exc}") from None
        if r.status_code not in ok:
            try:
                message = r.json().get("message", r.text)
            except ValueError:
                message = r.text[:200]
            raise HubAPIError(f"{method} /hub/api{path}: {r.status_code} {message}")
        return r

    def check(self) -> None:
        self.call("GET", "/")
        who = self.call("GET", "/user").json()
        if who.get("kind") != "service" and not who.get("admin"):
            scopes = set(who.get("scopes", []))
            if not {"admin:users", "admin:groups"} <= scopes:
                raise HubAPIError("the token needs admin:users, admin:groups and admin:servers (the lens-admin service)")

    def ensure_group(self, name: str) -> bool:
        r = self.call("POST", f"/groups/{name}", ok=(201, 409))
        return r.status_code == 201

    def group_members(self, name: str) -> list[str]:
        r = self.call("GET", f"/groups/{name}", ok=(200, 404))
        return r.json().get("users", []) if r.status_code == 200 else []

    def ensure_users(self, names: list[str]) -> list[str]:
        created = []
        for name in names:
            if self.call("POST", f"/users/{name}", ok=(201, 409)).status_code == 201:
                created.append(name)
        return created

    def add_to_group(self, group: str, names: list[str]) -> None:
        if names:
            self.call("POST", f"/groups/{group}/users", json={"users": names})

    def user(self, name: str) -> dict | None:
        r = self.call("GET", f"/users/{name}", ok=(200, 404))
        return r.json() if r.status_code == 200 else None

    def stop_servers(self, names: list[str], timeout: float = 60) -> list[str]:
        """Stop every server of these users; return those that had one."""
        had = []
        for name in names:
            model = self.user(name)
            for server in (model or {}).get("servers", {}):
                path = f"/users/{name}/servers/{server}" if server else f"/users/{name}/server"
                self.call("DELETE", path, ok=(202, 204, 400, 404))
                had.append(name)
        deadline = time.monotonic() + timeout
        pending = set(had)
        while pending and time.monotonic() < deadline:
            pending = {n for n in pending if (self.user(n) or {}).get("servers")}
            if pending:
                time.sleep(0.3)
        if pending:
            raise HubAPIError(f"servers did not stop within {timeout:.0f}s: {', '.join(sorted(pending))}")
        return sorted(set(had))

    def revoke_tokens(self, name: str) -> int:
        """Drop the user's API and OAuth tokens, so open browser tabs lose access."""
        r = self.call("GET", f"/users/{name}/tokens", ok=(200, 404))
        if r.status_code != 200:
            return 0
        tokens = r.json().get("api_tokens", []) + r.json().get("oauth_tokens", [])
        for t in tokens:
            self.call("DELETE", f"/users/{name}/tokens/{t['id']}", ok=(204, 404))
        return len(tokens)

    def has_role(self, user: str, role: str) -> bool:
        return role in ((self.user(user) or {}).get("roles") or [])
