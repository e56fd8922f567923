"""Dask clusters: a user's token cannot list, connect to, scale or stop another
user's cluster, through the real hub, proxy and dask-gateway of a lens stack."""

from __future__ import annotations

import gc
import os

import pytest
import requests

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="clusters run as the users' unix accounts: needs root"),
]
OWNER, OTHER = "dxowner", "dxother"


def gateway(stack, token):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    return Gateway(address=f"{stack.url}/services/dask-gateway",
                   proxy_address=f"gateway://127.0.0.1:{stack.env['LENS_GATEWAY_PROXY_PORT']}",
                   auth=JupyterHubAuth(api_token=token))


def test_another_users_token_cannot_touch_a_cluster(stack):
    owner, other = stack.create_user(OWNER), stack.create_user(OTHER)
    stack.spawn(OWNER, "lab")  # the owner's unix account, which runs its clusters
    gw_owner, gw_other = gateway(stack, owner), gateway(stack, other)
    cluster = gw_owner.new_cluster(shutdown_on_close=False)
    name = cluster.name
    report = again = client = None
    try:
        assert name in [c.name for c in gw_owner.list_clusters()]
        assert name not in [c.name for c in gw_other.list_clusters()]
        # the owner's JupyterLab (Costs tab) lists it through their server, with its rate
        r = requests.get(f"{stack.url}/user/{OWNER}/lens/api/dask", headers={"Authorization": f"token {owner}"},
                         timeout=30)
        assert r.status_code == 200 and r.json()["available"], r.text
        assert [c["name"] for c in r.json()["clusters"]] == [name], r.text
        # another user's token does not open the owner's server
        r = requests.get(f"{stack.url}/user/{OWNER}/lens/api/dask", headers={"Authorization": f"token {other}"},
                         timeout=30, allow_redirects=False)
        assert r.status_code in (302, 403), r.status_code
        for call, args in [(gw_other.connect, (name,)), (gw_other.get_cluster, (name,)),
                           (gw_other.scale_cluster, (name, 2)), (gw_other.stop_cluster, (name,))]:
            with pytest.raises(Exception, match="403"):
                call(*args)
        gc.collect()
        api = f"{stack.url}/services/dask-gateway/api/v1/clusters/{name}"
        for method, path, body in [("GET", "", None), ("POST", "/scale", {"count": 2}),
                                   ("POST", "/adapt", {"minimum": 0, "maximum": 2}), ("DELETE", "", None)]:
            r = requests.request(method, api + path, json=body, timeout=30,
                                 headers={"Authorization": f"jupyterhub {other}"})
            assert r.status_code == 403, (method, path, r.text)
            r = requests.request(method, api + path, json=body, timeout=30)  # no credentials at all
            assert r.status_code == 401, (method, path, r.text)
        # untouched: still running, not scaled, and its owner still reaches it
        report = gw_owner.get_cluster(name)
        assert report.status.name == "RUNNING"
        with gw_owner.connect(name, shutdown_on_close=False) as again:
            assert again.name == name
            client = again.get_client()
            assert client.scheduler_info()["workers"] == {}  # the scale request never happened
            client.close()
    finally:
        # collect the cluster objects while their gateways' loops still run (dask-gateway's
        # __del__ needs them: tests/dask/test_gateway.py)
        cluster = report = again = client = None  # noqa: F841
        gc.collect()
        gw_owner.stop_cluster(name)
        gw_owner.close()
        gw_other.close()
        stack.stop_server(OWNER)
