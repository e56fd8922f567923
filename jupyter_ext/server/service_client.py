"""Calls from a user server to the lens hub service, with the server's own hub token."""

from __future__ import annotations

import json
import os

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class ServiceError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class LensServiceClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30):
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout

    async def request(self, method: str, path: str, body: dict | None = None) -> dict:
        if not self.base_url.strip("/"):
            raise ServiceError(503, "LENS_SERVICE_URL is not set: this server is not running under a lens hub.")
        req = HTTPRequest(
            self.base_url + path.lstrip("/"),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None,
            request_timeout=self.timeout,
            allow_nonstandard_methods=True,
        )
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as exc:
            message = str(exc)
            if exc.response is not None and exc.response.body:
                try:
                    message = json.loads(exc.response.body).get("message", message)
                except ValueError:
                    pass
            raise ServiceError(exc.code, message) from None
        except OSError as exc:
            raise ServiceError(503, f"lens service unreachable: {exc}") from None
        return json.loads(resp.body or b"{}")
