"""Stop a user's clusters when their server stops or is culled (dask-gateway #255, #393).

The spawner calls ``await stop_user_clusters(name)`` from its stop hook. It uses
the lens route ``DELETE /api/v1/lens/users/{name}/clusters`` with the gateway's
service token; it never raises into the spawner (a failure is logged and
returned), because a server stop must not fail on the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import quote

import aiohttp

log = logging.getLogger("lens.gateway")


def default_gateway_url() -> str:
    """The gateway as the hub process reaches it (directly, not through the proxy)."""
    if os.environ.get("LENS_GATEWAY_URL"):
        return os.environ["LENS_GATEWAY_URL"]
    port = os.environ.get("LENS_GATEWAY_PORT", "8010")
    prefix = os.environ.get("LENS_GATEWAY_PREFIX", "/services/dask-gateway").rstrip("/")
    return f"http://127.0.0.1:{port}{prefix}"


def default_token() -> str:
    return os.environ.get("LENS_GATEWAY_TOKEN") or os.environ.get("DASK_GATEWAY_SERVICE_TOKEN", "")


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
    url = (gateway_url or default_gateway_url()).rstrip("/")
    url = f"{url}/api/v1/lens/users/{quote(user_name, safe='')}/clusters"
    tok = token if token is not None else default_token()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.delete(
                url,
                headers={"Authorization": f"token {tok}"},
                timeout=aiohttp.ClientTimeout(total=request_timeout),
            ) as resp:
                if resp.status != 200:
                    log.warning(
                        "Stopping clusters of %s failed: HTTP %s %s",
                        user_name,
                        resp.status,
                        (await resp.text())[:200],
                    )
                    return []
                stopped = (await resp.json())["stopped"]
    except asyncio.CancelledError:
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        log.warning("Stopping clusters of %s failed: %r", user_name, exc)
        return []
    if stopped:
        log.info("Stopped %d Dask cluster(s) of %s", len(stopped), user_name)
    return stopped
