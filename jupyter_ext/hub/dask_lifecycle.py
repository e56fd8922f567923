"""Stop a user's clusters when their server stops or is culled (dask-gateway #255, #393).

The spawner calls ``await stop_user_clusters(name)`` from its stop hook. It uses
the lens route ``DELETE /api/v1/lens/users/{name}/clusters`` with the gateway's
service token (``jupyter_ext.clients.GatewayClient``); it never raises into the
spawner (a failure is logged and returned), because a server stop must not fail
on the gateway.
"""

from __future__ import annotations

import logging

from jupyter_ext.clients.base import PeerError
from jupyter_ext.clients.gateway import GatewayClient, default_gateway_token, default_gateway_url

log = logging.getLogger("lens.gateway")


async def stop_user_clusters(
    user_name: str,
    *,
    gateway_url: str | None = None,
    token: str | None = None,
    request_timeout: float = 10.0,
) -> list[str]:
    """Stop every active cluster of ``user_name``; return the stopped cluster names.

    ``gateway_url`` defaults to ``$LENS_GATEWAY_URL`` or
    ``http://127.0.0.1:$LENS_GATEWAY_PORT/services/dask-gateway``; ``token`` to
    ``$LENS_GATEWAY_TOKEN`` (the dask-gateway service's hub API token).
    """
    gateway = GatewayClient(gateway_url or default_gateway_url(),
                            token if token is not None else default_gateway_token(), timeout=request_timeout)
    try:
        stopped = await gateway.stop_user_clusters(user_name)
    except (PeerError, KeyError, TypeError) as exc:
        log.warning("Stopping clusters of %s failed: %s", user_name, exc)
        return []
    if stopped:
        log.info("Stopped %d Dask cluster(s) of %s", len(stopped), user_name)
    return stopped
