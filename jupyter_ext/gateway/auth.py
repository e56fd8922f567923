"""JupyterHub authentication for the gateway.

Upstream's ``JupyterHubAuthenticator`` turns the hub's 403 for an unknown or
scope-less token into a 500 ("Permission failure verifying user's JupyterHub
API token"). A bad user token is the caller's fault: answer 401 instead.
"""

from __future__ import annotations

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized


class LensJupyterHubAuthenticator(JupyterHubAuthenticator):
    """JupyterHubAuthenticator that answers 401, not 500, for tokens the hub rejects."""

    async def authenticate(self, request):
        try:
            return await super().authenticate(request)
        except web.HTTPInternalServerError as exc:
            if "Permission failure" in (exc.reason or ""):
                raise unauthorized("jupyterhub") from None
            raise
