"""The Dask Gateway's lens routes (``/services/dask-gateway/api/v1/lens/...``)."""

from __future__ import annotations

import os

from .base import PeerClient, path


def default_gateway_url() -> str:
    """The gateway as the hub process reaches it (directly, not through the proxy)."""
    if os.environ.get("LENS_GATEWAY_URL"):
        return os.environ["LENS_GATEWAY_URL"]
    port = os.environ.get("LENS_GATEWAY_PORT", "8010")
    prefix = os.environ.get("LENS_GATEWAY_PREFIX", "/services/dask-gateway").rstrip("/")
    return f"http://127.0.0.1:{port}{prefix}"


def default_gateway_token() -> str:
    return os.environ.get("LENS_GATEWAY_TOKEN") or os.environ.get("DASK_GATEWAY_SERVICE_TOKEN", "")


class GatewayClient(PeerClient):
    """``GatewayClient(gateway_url, token)`` with the gateway's service token."""

    peer = "dask gateway"

    async def stop_user_clusters(self, user: str) -> list[str]:
        data = await self.request("DELETE", path("api", "v1", "lens", "users", user, "clusters"))
        return list(data["stopped"])

    async def cluster_owner(self, name: str) -> str | None:
        """The hub user who owns cluster NAME, or None if the gateway knows no such cluster."""
        data = await self.get_or_none(path("api", "v1", "lens", "clusters", name, "owner"))
        return None if data is None else str(data["user"])

    async def usage(self) -> dict:
        return await self.request("GET", "api/v1/lens/usage")


class UserGatewayClient(PeerClient):
    """The gateway as a user server calls it: with the server's hub token, which the
    gateway's JupyterHub authenticator takes as ``Authorization: jupyterhub <token>``."""

    peer = "dask gateway"
    missing_url = "DASK_GATEWAY__ADDRESS is not set: this server has no Dask Gateway."
    auth_scheme = "jupyterhub"

    @classmethod
    def from_env(cls, **kwargs) -> UserGatewayClient:
        return cls(os.environ.get("DASK_GATEWAY__ADDRESS", ""), os.environ.get("JUPYTERHUB_API_TOKEN", ""),
                   **kwargs)

    async def my_cluster_costs(self) -> list[dict]:
        """The caller's running clusters with their $/h and cost so far (their own only)."""
        return list((await self.request("GET", "api/v1/lens/costs"))["clusters"])
