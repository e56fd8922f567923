"""The lens hub service (``/services/lens/``) as the hub, user servers and the gateway call it."""

from __future__ import annotations

import os

from .base import PeerClient, path


class LensClient(PeerClient):
    """``LensClient(service_url, token)``; ``service_url`` ends in ``/services/lens/``.

    From a user server, ``LensClient.from_env()`` uses ``$LENS_SERVICE_URL`` and the
    server's own ``$JUPYTERHUB_API_TOKEN`` (it acts as the user)."""

    peer = "lens service"
    missing_url = "LENS_SERVICE_URL is not set: this server is not running under a lens hub."

    @classmethod
    def from_env(cls, **kwargs) -> LensClient:
        return cls(os.environ.get("LENS_SERVICE_URL", ""), os.environ.get("JUPYTERHUB_API_TOKEN", ""), **kwargs)

    async def me(self) -> dict:
        return await self.request("GET", "api/me")

    async def budget_check(self, user: str, category: str, rate: float | None = None) -> dict:
        return await self.request("GET", path("api", "budget", "check",
                                              params={"user": user, "category": category, "rate": rate}))

    async def budget_hold(self, user: str, category: str, rate: float, ref: str) -> dict:
        """Not retried: a second hold would reserve the budget twice."""
        return await self.request("POST", "api/budget/hold",
                                  {"user": user, "category": category, "rate": rate, "ref": ref})

    async def budget_release(self, hold_id: int) -> dict:
        return await self.request("POST", "api/budget/release", {"hold_id": hold_id},
                                  idempotency_key=f"release:{hold_id}")

    async def budget_alerts(self) -> list[dict]:
        return list((await self.request("GET", "api/budget/alerts"))["alerts"])

    async def meter_server(self, event: dict, key: str) -> dict:
        return await self.request("POST", "api/meter/servers", event, idempotency_key=key)

    async def register_archive(self, record: dict, key: str) -> dict:
        return await self.request("POST", "api/archives", record, idempotency_key=key)
