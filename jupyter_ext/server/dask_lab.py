"""dask-labextension's REST routes in a lens server, loaded on first use.

dask-labextension's own server extension imports dask.distributed (and bokeh
with jupyter-server-proxy's handlers) when the server starts: about 0.8 CPU-s
at every start, for a sidebar most sessions never open. lens turns that
extension off (``jupyter-config/jupyter_server_config.d/jupyter_ext.json``)
and registers the same routes itself with stand-in handler classes: the first
request to ``dask/...`` imports ``jupyter_ext.server.dask_lab_gateway`` (and
through it dask_labextension), and every request is served by the real handler.

The pure helpers below turn the gateway's view of a user's clusters (lens's
``api/v1/lens/costs`` route) into dask-labextension's cluster model.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from urllib.parse import urlparse

from tornado import web

# dask-labextension's route patterns (its _load_jupyter_server_extension, 7.0.0)
CLUSTER_ID = r"(?P<cluster_id>\w+-\w+-\w+-\w+-\w+)"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_ID_NAMESPACE = uuid.UUID("6c656e73-6461-736b-2d6c-61622d696473")  # fixed: ids stay stable


def cluster_id(name: str) -> str:
    """dask-labextension's id for gateway cluster NAME (its routes take only
    uuid-shaped ids): the uuid a hex name already is, else one derived from it."""
    tail = name.rsplit(".", 1)[-1].lower()
    if _HEX32.match(tail) and tail == name.lower():
        return str(uuid.UUID(hex=tail))
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def usd(value: float) -> str:
    return f"${value:.3f}" if abs(value) < 1 else f"${value:.2f}"


def display_name(cost: dict) -> str:
    """The cluster's title in dask-labextension's list: its name and its cost."""
    short = str(cost["name"]).rsplit(".", 1)[-1][:8]
    return f"{short} · {usd(float(cost.get('usd_per_hour', 0)))}/h · {usd(float(cost.get('accrued_usd', 0)))} so far"


def format_gib(gib: float) -> str:
    """dask.utils.format_bytes's style for a size in GiB (the panel shows it as is)."""
    return f"{gib:.2f} GiB"


def cluster_model(cost: dict, public_address: str, proxy_address: str) -> dict:
    """dask-labextension's cluster model for one entry of the gateway's costs route."""
    name = str(cost["name"])
    workers = int(cost.get("workers", 0))
    return {
        "id": cluster_id(name),
        "name": display_name(cost),
        "gateway_name": name,
        "scheduler_address": f"{proxy_address.rstrip('/')}/{name}" if proxy_address else "",
        "dashboard_link": f"{public_address.rstrip('/')}/clusters/{name}/status" if public_address else "",
        "workers": workers,
        "memory": format_gib(workers * float(cost.get("worker_memory_gib", 0))),
        "cores": int(round(workers * float(cost.get("worker_cores", 0)))),
        "usd_per_hour": float(cost.get("usd_per_hour", 0)),
        "accrued_usd": float(cost.get("accrued_usd", 0)),
    }


def dashboard_target(public_address: str, name: str, proxied_path: str, protocol: str) -> str:
    """Where ``dask/dashboard/ID/PATH`` goes: the cluster's dashboard behind the lens
    service's owner-only hop (``{gateway}/clusters/NAME/PATH``), over ``protocol``
    (``http`` or ``ws``; ``s`` added when the gateway's address is https)."""
    parsed = urlparse(public_address)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"the gateway address {public_address!r} is not an http(s) URL")
    secure = "s" if parsed.scheme == "https" else ""
    path = "/" + proxied_path.lstrip("/")
    return f"{protocol}{secure}://{parsed.netloc}{parsed.path.rstrip('/')}/clusters/{name}{path}"


MAX_WORKERS = 10_000  # a sanity bound on a scale request (the gateway caps at its own limit)
SCALE_USAGE = f'Send {{"workers": N}} or {{"adapt": {{"minimum": N, "maximum": M}}}}, whole numbers 0 to {MAX_WORKERS}.'


def _worker_count(value) -> int:
    """A JSON worker count: a whole number from 0 to MAX_WORKERS (2.0 is 2; true, "2", 2.5, -1 are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(value)
    if isinstance(value, float) and not value.is_integer():  # also inf and nan
        raise ValueError(value)
    if not 0 <= value <= MAX_WORKERS:
        raise ValueError(value)
    return int(value)


def scale_change(body: bytes) -> dict:
    """The PATCH body of ``dask/clusters/ID``: ``{"workers": N}`` or ``{"adapt": {"minimum": N,
    "maximum": M}}`` (dask-labextension sends the whole cluster model, changed). ValueError
    (with SCALE_USAGE or what is wrong) for anything else."""
    try:
        change = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ValueError("The request body must be JSON.") from None
    if not isinstance(change, dict):
        raise ValueError(SCALE_USAGE)
    adapt = change.get("adapt")
    try:
        if adapt:
            if not isinstance(adapt, dict):
                raise ValueError(adapt)
            minimum, maximum = _worker_count(adapt.get("minimum")), _worker_count(adapt.get("maximum"))
        else:
            return {"workers": _worker_count(change.get("workers"))}
    except ValueError:
        raise ValueError(SCALE_USAGE) from None
    if minimum > maximum:
        raise ValueError(f"Adapt's minimum ({minimum}) is more than its maximum ({maximum}).")
    return {"adapt": {"minimum": minimum, "maximum": maximum}}


# -- the stand-ins ----------------------------------------------------------
class _LoadedOnFirstUse(web.RequestHandler):
    """Builds the real handler (``real`` in jupyter_ext.server.dask_lab_gateway) when
    tornado makes one for a request: ``__new__`` returns that instance instead, so
    the request is served entirely by the real class (its auth decorators included).
    This class itself has no methods, so jupyter_server's check that every extension
    method is authenticated has nothing to object to."""

    real = ""

    def __new__(cls, application, request, **kwargs):
        module = importlib.import_module("jupyter_ext.server.dask_lab_gateway")
        return getattr(module, cls.real)(application, request, **kwargs)


class LazyClusterHandler(_LoadedOnFirstUse):
    real = "GatewayClusterHandler"


class LazyDashboardHandler(_LoadedOnFirstUse):
    real = "GatewayDashboardHandler"


class LazyDashboardCheckHandler(_LoadedOnFirstUse):
    real = "GatewayDashboardCheckHandler"


def dask_lab_handlers() -> list[tuple]:
    """dask-labextension's routes (relative to the server's base URL)."""
    return [
        (rf"/dask/clusters/{CLUSTER_ID}", LazyClusterHandler),
        # any other id: the same handler's JSON 404, not the server's HTML page
        (r"/dask/clusters/(?P<cluster_id>[^/]+)", LazyClusterHandler),
        (r"/dask/clusters/?", LazyClusterHandler),
        (rf"/dask/dashboard/{CLUSTER_ID}(?P<proxied_path>.+)", LazyDashboardHandler),
        (r"/dask/dashboard-check/(?P<url>.+)", LazyDashboardCheckHandler),
    ]
