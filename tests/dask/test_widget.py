"""The cost in dask-gateway's cluster widget, installed lazily by a post-import hook.

Hook tests run in fresh interpreters (no dask_gateway in sys.modules); the widget
tests use a real cluster of the real gateway of the Dask stack."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import types

import pytest

from jupyter_ext.gateway.metering import my_cluster_costs
from jupyter_ext.kernel import dask_widget as widget
from jupyter_ext.kernel import import_hook
from tests.dask.support import ROOT

KERNEL_START = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
{pre}
shell.extension_manager.load_extension("jupyter_ext.kernel.magics")   # what a lens kernel does
before = sorted(m for m in sys.modules if m.startswith("dask_gateway"))
import dask_gateway
from dask_gateway.client import Gateway, GatewayCluster
from jupyter_ext.kernel import dask_client_fix as client_fix, import_hook
import inspect
print(json.dumps({{
    "before": before,
    "patched": getattr(GatewayCluster, "_lens_cost_patched", False),
    "client_fix": client_fix._INSTALLED and Gateway.__del__.__module__ == "jupyter_ext.kernel.dask_client_fix",
    "loader": type(dask_gateway.client.__loader__).__name__,
    "finder_left": import_hook._FINDER in sys.meta_path,
    "source_ok": "class GatewayCluster" in inspect.getsource(dask_gateway.client),
}}))
"""


def run_kernel_start(tmp_path, pre: str = "") -> dict:
    env = {"PYTHONPATH": ROOT, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipy")}
    out = subprocess.run([sys.executable, "-c", KERNEL_START.format(pre=pre)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kernel_start_does_not_import_dask_gateway_and_the_import_patches_it(tmp_path):
    result = run_kernel_start(tmp_path)
    assert result == {"before": [], "patched": True, "client_fix": True, "loader": "SourceFileLoader",
                      "finder_left": False, "source_ok": True}


def test_dask_gateway_imported_before_the_extension_is_patched_at_once(tmp_path):
    result = run_kernel_start(tmp_path, pre="import dask_gateway")
    assert result["before"] and result["patched"] and result["client_fix"]


def test_a_failing_hook_never_breaks_the_import(tmp_path, monkeypatch, caplog):
    (tmp_path / "lens_hooked_example.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    def broken(module):
        raise RuntimeError("upstream changed")

    import_hook.when_imported("lens_hooked_example", broken)
    import_hook.when_imported("lens_hooked_example", lambda m: seen.append(m.VALUE))
    assert import_hook._FINDER in sys.meta_path
    with caplog.at_level(logging.DEBUG, logger="jupyter_ext.kernel.import_hook"):
        import lens_hooked_example  # noqa: F401
    try:
        assert lens_hooked_example.VALUE == 42 and seen == [42]
        assert "upstream changed" in caplog.text
        assert import_hook._FINDER not in sys.meta_path
        assert type(lens_hooked_example.__spec__.loader).__name__ == "SourceFileLoader"
    finally:
        sys.modules.pop("lens_hooked_example", None)


def test_widget_patch_does_nothing_when_upstream_differs(caplog):
    class GatewayCluster:  # a future upstream without _widget_status
        def _widget(self):
            return None

    with caplog.at_level(logging.DEBUG, logger="jupyter_ext.kernel.dask_widget"):
        assert widget.install(types.SimpleNamespace(GatewayCluster=GatewayCluster)) is False
        assert widget.install(types.SimpleNamespace()) is False
    assert "no cost in the widget" in caplog.text
    assert not hasattr(GatewayCluster, "_lens_cost_patched")


def test_cost_row_rendering():
    table = "<div><table>\n<tr><th>Workers</th> <td>2</td></tr>\n</table>\n</div>"
    html = widget.with_cost_row(table, {"usd_per_hour": 0.09, "accrued_usd": 0.00125})
    assert "<tr><th>Cost</th> <td>$0.090/h, $0.0013 so far</td></tr>\n</table>" in html
    assert "<td>unavailable</td>" in widget.with_cost_row(table, None)
    assert widget.with_cost_row("<p>no table</p>", None).endswith("<p><b>Cost:</b> unavailable</p>")


@pytest.mark.integration
def test_cluster_widget_shows_rate_and_accrued_cost(dask_stack, monkeypatch):
    import dask_gateway.client

    from tests.dask.test_gateway import _gw

    assert widget.install(dask_gateway.client)
    monkeypatch.setattr(widget, "REFRESH_SECONDS", 0.5)
    gw = _gw(dask_stack, "a")
    cluster = gw.new_cluster(worker_cores=1, worker_memory=1)
    try:
        cluster.scale(1)
        client = cluster.get_client()
        client.wait_for_workers(1, timeout=60)
        deadline = time.monotonic() + 30
        while len(cluster.scheduler_info.get("workers", {})) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        live = {c["name"]: c for c in my_cluster_costs(gw)}[cluster.name]
        assert live["microusd_per_hour"] == 45_000
        status = cluster._widget_status()
        assert "<th>Workers</th> <td>1</td>" in status
        assert "<tr><th>Cost</th> <td>$0.045/h, $" in status and "so far</td></tr>" in status
        assert "<li><b>Cost: </b>$0.045/h, $" in cluster._repr_html_()

        # the ipywidget: its status shows the cost and keeps it current
        box = cluster._widget()
        assert box is not None and "$0.045/h" in cluster._status_widget.value
        first = cluster._lens_cost["accrued_microusd"]
        deadline = time.monotonic() + 20
        while cluster._lens_cost["accrued_microusd"] <= first and time.monotonic() < deadline:
            time.sleep(0.25)
        assert cluster._lens_cost["accrued_microusd"] > first
        assert "$0.045/h" in cluster._status_widget.value

        # the costs route failing never breaks the widget
        address = cluster.gateway.address
        cluster.gateway.address = address + "/no-such-prefix"
        try:
            assert "<td>unavailable</td>" in cluster._widget_status()
            assert "<li><b>Cost: </b>unavailable" in cluster._repr_html_()
        finally:
            cluster.gateway.address = address
        client.close()
    finally:
        cluster.shutdown()
        gw.close()
