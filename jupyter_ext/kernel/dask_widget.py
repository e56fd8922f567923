"""The live cost of a cluster in dask-gateway's cluster widget.

``install(dask_gateway.client)`` extends ``GatewayCluster``:

- ``_widget_status`` (the workers/threads/memory table of the ipywidget) gets a
  "Cost" row: the cluster's $/h and the cost accrued so far;
- ``_repr_html_`` (the plain HTML view) gets the same line;
- ``_widget`` starts a small task on the client's event loop that refreshes
  the cost every ``REFRESH_SECONDS`` while the cluster is running.

The figures come from the gateway's ``GET /api/v1/lens/costs`` route, which
only ever returns the caller's own clusters. Any failure (not a lens gateway,
gateway down, timeout) shows "Cost: unavailable": the widget never breaks. If
the upstream attribute names are not there, nothing is patched (debug log).
The import hook (``import_hook``) runs this when a kernel imports dask_gateway.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from decimal import Decimal
from html import escape

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
FETCH_TIMEOUT = 5.0
_NEEDED = ("_widget_status", "_widget", "_repr_html_")


def _exact_usd(micro: int, places: int) -> str:
    """Micro-dollars as dollars, never rounded (at least ``places`` decimals)."""
    value = (Decimal(int(micro)) / 1_000_000).normalize()
    return f"${value:,.{max(places, -value.as_tuple().exponent)}f}"


def cost_text(cost: dict | None) -> str:
    """``$0.090/h, $0.0123 so far``: the rate is the one the ledger charges, unrounded."""
    if not cost:
        return "unavailable"
    if "microusd_per_hour" in cost:
        return (f"{_exact_usd(cost['microusd_per_hour'], 3)}/h, "
                f"{_exact_usd(cost.get('accrued_microusd', 0), 4)} so far")
    return f"${float(cost.get('usd_per_hour', 0)):,.3f}/h, ${float(cost.get('accrued_usd', 0)):,.4f} so far"


def with_cost_row(status_html: str, cost: dict | None) -> str:
    """Upstream's status table with a Cost row (appended if there is no table)."""
    row = f"<tr><th>Cost</th> <td>{escape(cost_text(cost))}</td></tr>\n"
    head, sep, tail = status_html.rpartition("</table>")
    if not sep:
        return status_html + f"<p><b>Cost:</b> {escape(cost_text(cost))}</p>"
    return f"{head}{row}{sep}{tail}"


async def fetch_cost(cluster) -> dict | None:
    """This cluster's entry of the gateway's costs route; None if it has none.
    Never raises (but cancellation); the result is kept as ``cluster._lens_cost``."""
    gw = cluster.gateway
    try:
        resp = await asyncio.wait_for(gw._request("GET", f"{gw.address}/api/v1/lens/costs"), FETCH_TIMEOUT)
        clusters = (await resp.json()).get("clusters", [])
        cost = next((c for c in clusters if c.get("name") == cluster.name), None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("cluster cost unavailable: %s", exc)
        cost = None
    cluster._lens_cost = cost
    return cost


def _on_client_loop(cluster) -> bool:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return running is cluster.loop.asyncio_loop


async def _update(cluster) -> None:
    """Fetch the cost and redraw the widget's status table with it."""
    try:
        cost = await fetch_cost(cluster)
        status = getattr(cluster, "_status_widget", None)
        html = cluster._lens_original_status()
        if status is not None and html is not None:
            status.value = with_cost_row(html, cost)
    finally:
        cluster._lens_updating = False


def current_cost(cluster) -> dict | None:
    """Fetch the cost now when this thread may wait for the client's loop (the
    notebook's thread); on the loop itself (workers came or went), the last
    value now and a redraw with a fresh one shortly."""
    if cluster.asynchronous or _on_client_loop(cluster):
        if _on_client_loop(cluster) and not getattr(cluster, "_lens_updating", False):
            cluster._lens_updating = True
            asyncio.ensure_future(_update(cluster))
        return getattr(cluster, "_lens_cost", None)
    future = asyncio.run_coroutine_threadsafe(fetch_cost(cluster), cluster.loop.asyncio_loop)
    try:
        return future.result(FETCH_TIMEOUT + 1)
    except Exception as exc:
        future.cancel()
        log.debug("cluster cost unavailable: %s", exc)
        return None


async def _refresh(ref: weakref.ref) -> None:
    """Keep the widget's Cost row current while the cluster runs."""
    while True:
        await asyncio.sleep(REFRESH_SECONDS)
        cluster = ref()
        if cluster is None or cluster.status in ("closing", "closed"):
            return
        await _update(cluster)
        cluster = None


def install(client_module) -> bool:
    """Extend ``client_module.GatewayCluster``; False (and a debug log) if it does not fit."""
    cls = getattr(client_module, "GatewayCluster", None)
    if cls is None or not all(callable(getattr(cls, name, None)) for name in _NEEDED):
        log.debug("dask_gateway.client has no GatewayCluster.%s: no cost in the widget", "/".join(_NEEDED))
        return False
    if getattr(cls, "_lens_cost_patched", False):
        return True
    from jupyter_ext.upstream import check

    if not check("dask-gateway.cluster_widget", log):
        return False  # written for dask-gateway 2026.3.0's private widget methods
    original_status, original_widget, original_html = cls._widget_status, cls._widget, cls._repr_html_

    def _widget_status(self):
        html = original_status(self)
        return None if html is None else with_cost_row(html, current_cost(self))

    def _widget(self):
        fresh = not hasattr(self, "_cached_widget")
        box = original_widget(self)
        if fresh and box is not None and hasattr(self, "_status_widget") and not self.asynchronous:
            asyncio.run_coroutine_threadsafe(_refresh(weakref.ref(self)), self.loop.asyncio_loop)
        return box

    def _repr_html_(self):
        html = original_html(self)
        line = f"    <li><b>Cost: </b>{escape(cost_text(current_cost(self)))}\n"
        head, sep, tail = html.rpartition("  </ul>")
        return f"{head}{line}{sep}{tail}" if sep else html + line

    cls._lens_original_status = original_status
    cls._widget_status, cls._widget, cls._repr_html_ = _widget_status, _widget, _repr_html_
    cls._lens_cost_patched = True
    return True
