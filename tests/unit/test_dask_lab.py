"""The Dask tab's server side: dask-labextension's routes, loaded on first use, on the gateway.

Pure helpers are checked directly; the lazy loading and the factory config in fresh
interpreters (a real jupyter_server with this checkout's jupyter-config; dask's own
config resolution with the environment the spawner gives)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from jupyter_ext.hub.dask_env import LABEXTENSION_ENV, gateway_env
from jupyter_ext.server.dask_lab import (
    CLUSTER_ID,
    MAX_WORKERS,
    cluster_id,
    cluster_model,
    dashboard_target,
    scale_change,
)
from tests.support.hub import REPO

HEX = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
COST = {"name": HEX, "user": "alice", "status": "RUNNING", "workers": 2, "worker_cores": 1.0,
        "worker_memory_gib": 2.0, "usd_per_hour": 0.09, "accrued_usd": 0.0123}


def test_cluster_ids_fit_dask_labextension_routes_and_stay_the_same():
    assert cluster_id(HEX) == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    dotted = cluster_id("lens-ns." + HEX)  # Kubernetes names carry the namespace
    assert dotted == cluster_id("lens-ns." + HEX) != cluster_id("other-ns." + HEX)
    for cid in (cluster_id(HEX), dotted, cluster_id("weird name/..")):
        assert re.fullmatch(CLUSTER_ID, cid), cid


def test_cluster_model_has_dask_labextensions_fields_and_the_cost():
    m = cluster_model(COST, "http://hub:8000/services/dask-gateway/", "gateway://127.0.0.1:8786")
    assert m["id"] == cluster_id(HEX) and m["gateway_name"] == HEX
    assert m["name"] == "0f1e2d3c · $0.090/h · $0.012 so far"
    assert m["dashboard_link"] == f"http://hub:8000/services/dask-gateway/clusters/{HEX}/status"
    assert m["scheduler_address"] == f"gateway://127.0.0.1:8786/{HEX}"
    assert (m["workers"], m["cores"], m["memory"]) == (2, 2, "4.00 GiB")
    assert "adapt" not in m
    json.dumps(m)


def test_dashboard_requests_go_to_the_clusters_page_behind_the_hop():
    base = "http://127.0.0.1:8000/services/dask-gateway"
    assert dashboard_target(base, HEX, "/individual-plots.json", "http") == \
        f"http://127.0.0.1:8000/services/dask-gateway/clusters/{HEX}/individual-plots.json"
    assert dashboard_target("https://hub.example.org/services/dask-gateway/", HEX, "status/ws", "ws") == \
        f"wss://hub.example.org/services/dask-gateway/clusters/{HEX}/status/ws"


def test_the_spawner_env_points_dask_labextensions_factory_at_gateway_cluster(tmp_path):
    env = gateway_env("alice", "http://127.0.0.1:8000", {"scratch_root": str(tmp_path)})
    assert {k: env[k] for k in LABEXTENSION_ENV} == LABEXTENSION_ENV
    code = ("import json, dask, dask_labextension.config, importlib\n"
            "f = dask.config.get('labextension.factory')\n"
            "getattr(importlib.import_module(f['module']), f['class'])\n"
            "print(json.dumps([f, dask.config.get('labextension.initial')]))")
    run_env = {**os.environ, **LABEXTENSION_ENV, "HOME": str(tmp_path), "DASK_CONFIG": str(tmp_path / "dask")}
    r = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    factory, initial = json.loads(r.stdout.strip().splitlines()[-1])
    assert factory == {"module": "dask_gateway", "class": "GatewayCluster", "args": [],
                       "kwargs": {"shutdown_on_close": False}}
    assert initial == []  # no cluster is started (and paid for) when a server starts


LAZY_PROBE = textwrap.dedent("""
    import asyncio, json, sys
    from jupyter_server.serverapp import ServerApp
    from tornado.httpclient import AsyncHTTPClient

    HEAVY = ("dask_labextension", "distributed", "bokeh", "dask_gateway")
    app = ServerApp.instance()
    app.initialize(argv=["--port=0", "--IdentityProvider.token=t0k", "--ServerApp.open_browser=False"])
    seen = {"after_start": [m for m in HEAVY if m in sys.modules]}

    async def ask():
        url = app.connection_url.rstrip("/") + "/dask/clusters"
        r = await AsyncHTTPClient().fetch(url, headers={"Authorization": "token t0k"}, raise_error=False)
        seen["status"], seen["body"] = r.code, r.body.decode()
        seen["after_request"] = [m for m in HEAVY if m in sys.modules]
        r = await AsyncHTTPClient().fetch(url, raise_error=False, follow_redirects=False)
        seen["anonymous"] = r.code
        auth = {"Authorization": "token t0k"}
        one = url + "/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
        seen["bad_scale"] = []
        for body in (b'{"workers": Infinity}', b'{"workers": -1}', b'{"workers": "2"}', b"[" * 50000, b"{"):
            r = await AsyncHTTPClient().fetch(one, method="PATCH", body=body, headers=auth, raise_error=False)
            seen["bad_scale"].append([r.code, r.headers.get("Content-Type", ""), r.body.decode()])
        r = await AsyncHTTPClient().fetch(one, method="PATCH", body=b'{"workers": 1}', raise_error=False,
                                          follow_redirects=False)
        seen["anonymous_scale"] = r.code
        r = await AsyncHTTPClient().fetch(url + "/not-a-uuid", headers=auth, raise_error=False)
        seen["odd_id"] = [r.code, r.headers.get("Content-Type", "")]
        check = app.connection_url.rstrip("/") + "/dask/dashboard-check/http%3A%2F%2Fexample.invalid%2Fstatus"
        r = await AsyncHTTPClient().fetch(check, raise_error=False, follow_redirects=False)
        seen["anonymous_check"] = r.code
        r = await AsyncHTTPClient().fetch(check, headers=auth, raise_error=False, request_timeout=60)
        seen["check"] = [r.code, r.body.decode()]

    app.io_loop.run_sync(ask) if hasattr(app, "io_loop") and app.io_loop else asyncio.run(ask())
    print(json.dumps(seen))
""")


def test_a_server_start_imports_no_dask_the_first_request_does(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASK_GATEWAY", "JUPYTERHUB"))}
    env.update(HOME=str(tmp_path), JUPYTER_CONFIG_PATH=str(REPO / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
               DASK_CONFIG=str(tmp_path / "dask"), PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", LAZY_PROBE], env=env, capture_output=True, text=True,
                       timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert seen["after_start"] == [], seen
    # no gateway in this server's environment: the real handler answers, as JSON
    assert seen["status"] == 503 and "DASK_GATEWAY__ADDRESS" in seen["body"], seen
    assert {"dask_labextension", "distributed"} <= set(seen["after_request"]), seen
    assert seen["anonymous"] in (302, 403), seen
    # bad scale requests: 400 with a JSON message (Infinity and deep nesting were 500s)
    for status, ctype, body in seen["bad_scale"]:
        assert status == 400 and "json" in ctype, seen["bad_scale"]
        assert "Send" in json.loads(body)["message"] or "must be JSON" in json.loads(body)["message"], body
    assert seen["anonymous_scale"] in (302, 403), seen
    # an id not shaped like a uuid reaches the handler (its JSON answer: here, no gateway), not the HTML 404
    assert seen["odd_id"][0] == 503 and "json" in seen["odd_id"][1], seen
    assert seen["anonymous_check"] in (302, 403), seen
    assert seen["check"][0] == 200 and json.loads(seen["check"][1])["isActive"] is False, seen  # @authorized lets the owner in


@pytest.mark.parametrize("body", [
    b"", b"{}", b"not json", b"[1]", b'"workers"', b"[" * 100_000,  # deep nesting: RecursionError, was a 500
    b'{"workers": -1}', b'{"workers": Infinity}', b'{"workers": NaN}', b'{"workers": 1e400}',  # inf: a 500
    b'{"workers": 2.5}', b'{"workers": "2"}', b'{"workers": true}', b'{"workers": null}',
    b'{"workers": %d}' % (MAX_WORKERS + 1), b'{"workers": 10000000000000000000000000}',
    b'{"adapt": true}', b'{"adapt": [1, 2]}', b'{"adapt": {"minimum": 1}}', b'{"adapt": {"minimum": -1, "maximum": 2}}',
    b'{"adapt": {"minimum": 3, "maximum": 2}}', b'{"adapt": {"minimum": "0", "maximum": 2}}',
    "{\"workers\": \"\u00e9\"}".encode(), b'{"workers": "\xff"}',
])
def test_a_bad_scale_request_is_refused_with_what_to_send(body):
    with pytest.raises(ValueError) as info:
        scale_change(body)
    assert "Send" in str(info.value) or "must be JSON" in str(info.value) or "more than" in str(info.value)


def test_scale_requests_as_dask_labextension_sends_them():
    model = {"id": "x", "name": "n", "workers": 1, "cores": 1}  # the panel sends the changed model back
    assert scale_change(json.dumps({**model, "workers": 3}).encode()) == {"workers": 3}
    assert scale_change(b'{"workers": 0}') == {"workers": 0}
    assert scale_change(b'{"workers": 4.0}') == {"workers": 4}
    assert scale_change(json.dumps({**model, "adapt": {"minimum": 0, "maximum": 5}}).encode()) == {
        "adapt": {"minimum": 0, "maximum": 5}}
    assert scale_change(b'{"adapt": {"minimum": 2, "maximum": 2}}') == {"adapt": {"minimum": 2, "maximum": 2}}
    assert scale_change(b'{"adapt": null, "workers": 2}') == {"workers": 2}  # adapt off
