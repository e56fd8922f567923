"""How kernels (magics, widgets) reach their own server's lens extension.

The kernel inherits the server's environment: JUPYTERHUB_SERVICE_URL (the
server's own address) and JUPYTERHUB_API_TOKEN. Requests go to
``<server>/lens/api/...``; the extension forwards to the lens service.
"""

from __future__ import annotations

import os

import requests


class LensClientError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class LensClient:
    def __init__(self, server_url: str | None = None, token: str | None = None, timeout: float = 60):
        self.server_url = (server_url or os.environ.get("JUPYTERHUB_SERVICE_URL", "")).rstrip("/")
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        self.session = requests.Session()

    @property
    def available(self) -> bool:
        return bool(self.server_url and self.token)

    def request(self, method: str, path: str, json: dict | None = None, params: dict | None = None) -> dict:
        if not self.available:
            raise LensClientError(
                503, "This kernel is not running in a lens user server (JUPYTERHUB_SERVICE_URL is not set)."
            )
        url = f"{self.server_url}/lens/api/{path.lstrip('/')}"
        try:
            r = self.session.request(
                method, url, json=json, params=params, timeout=self.timeout,
                headers={"Authorization": f"token {self.token}"},
            )
        except requests.RequestException as exc:
            raise LensClientError(503, f"cannot reach the lens server extension: {exc}") from None
        try:
            data = r.json()
        except ValueError:
            data = {"message": r.text[:500]}
        if r.status_code >= 400:
            raise LensClientError(r.status_code, data.get("message") or f"HTTP {r.status_code}")
        return data

    def service(self, method: str, path: str, **kwargs) -> dict:
        """Call the lens service through the extension's forwarder."""
        return self.request(method, f"service/{path.lstrip('/')}", **kwargs)
