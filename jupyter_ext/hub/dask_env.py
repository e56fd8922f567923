"""The environment a user server needs for zero-config Dask Gateway and data access.

``gateway_env`` is pure: the spawner calls it and merges the result into the
server's environment. With it, ``Gateway()``, ``GatewayCluster()`` and
``xr.open_zarr(f"{os.environ['SCRATCH_BUCKET']}/x.zarr")`` need no arguments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from jupyter_ext.gateway.settings import GatewaySettings

# dask-labextension's cluster factory (dask config ``labextension.factory``): "New" in its
# panel makes a GatewayCluster with the no-config Gateway above, and leaves it running
# when the server's client object is closed (jupyter_ext/server/dask_lab_gateway.py).
LABEXTENSION_ENV = {
    "DASK_LABEXTENSION__FACTORY__MODULE": "dask_gateway",
    "DASK_LABEXTENSION__FACTORY__CLASS": "GatewayCluster",
    "DASK_LABEXTENSION__FACTORY__KWARGS__SHUTDOWN_ON_CLOSE": "False",
}

_USER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def _settings(settings) -> GatewaySettings:
    if isinstance(settings, GatewaySettings):
        return settings
    if settings is None:
        return GatewaySettings()
    if isinstance(settings, Mapping):
        return GatewaySettings(**settings)
    raise TypeError(f"settings must be GatewaySettings or a mapping, got {type(settings).__name__}")


def scratch_url(user_name: str, settings) -> str:
    """``s3://BUCKET/scratch/USER``, or ``SCRATCH_ROOT/USER`` in local mode."""
    if not _USER_RE.match(user_name or ""):
        raise ValueError(f"user_name {user_name!r} is not a valid hub user name")
    s = _settings(settings)
    if s.scratch_bucket:
        bucket = s.scratch_bucket.removeprefix("s3://").strip("/")
        return f"s3://{bucket}/scratch/{user_name}"
    return os.path.join(s.scratch_root, user_name)


def gateway_env(user_name: str, hub_public_url: str, settings=None) -> dict[str, str]:
    """Environment variables for ``user_name``'s server.

    ``hub_public_url`` is the hub's base URL (e.g. ``http://127.0.0.1:8000``);
    the gateway is reached through the hub's proxy at ``/services/<name>``.
    """
    s = _settings(settings)
    if not hub_public_url or not hub_public_url.startswith(("http://", "https://")):
        raise ValueError(f"hub_public_url must be an http(s) URL, got {hub_public_url!r}")
    address = f"{hub_public_url.rstrip('/')}/services/{s.service_name}"
    env = {
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{s.proxy_host}:{s.proxy_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
        "SCRATCH_BUCKET": scratch_url(user_name, s),
        "LENS_INTAKE_CATALOG": s.intake_catalog,
        **LABEXTENSION_ENV,
    }
    if s.s3_endpoint_url:
        env["AWS_ENDPOINT_URL"] = s.s3_endpoint_url
        env["FSSPEC_S3_ENDPOINT_URL"] = s.s3_endpoint_url
    return env
