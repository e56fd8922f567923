"""Dask Gateway as a hub service, through the real hub and proxy."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def gateway_for(stack, token):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    return Gateway(
        address=f"{stack.url}/services/dask-gateway",
        proxy_address=f"gateway://127.0.0.1:{stack.env['LENS_GATEWAY_PROXY_PORT']}",
        auth=JupyterHubAuth(api_token=token),
    )


def test_clusters_belong_to_their_owner_and_die_with_the_server(stack, monkeypatch):
    a_token = stack.create_user("gw-a")
    b_token = stack.create_user("gw-b")
    stack.spawn("gw-a", "lab")
    # the server got the zero-config environment
    env_check = stack.api("GET", "/users/gw-a").json()["servers"][""]
    assert env_check["ready"]
    gw_a, gw_b = gateway_for(stack, a_token), gateway_for(stack, b_token)
    try:
        cluster = gw_a.new_cluster()
        name = cluster.name
        assert [c.name for c in gw_a.list_clusters()] == [name]
        assert gw_b.list_clusters() == []
        with pytest.raises(Exception):  # noqa: B017 - dask-gateway raises ValueError/ClientError variants
            gw_b.connect(name)
        # %costs shows the live cost of running clusters (the kernel's zero-config env)
        from jupyter_ext.kernel.magics.costs import clusters_html, running_cluster_costs

        monkeypatch.setenv("DASK_GATEWAY__ADDRESS", f"{stack.url}/services/dask-gateway")
        monkeypatch.setenv("DASK_GATEWAY__PROXY_ADDRESS", f"gateway://127.0.0.1:{stack.env['LENS_GATEWAY_PROXY_PORT']}")
        monkeypatch.setenv("DASK_GATEWAY__AUTH__TYPE", "jupyterhub")
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", a_token)
        import dask.config

        dask.config.refresh()  # a kernel has these variables before dask is imported
        deadline = time.monotonic() + 30  # the gateway lists a cluster once it is running
        live = running_cluster_costs()
        while [c["name"] for c in live] != [name] and time.monotonic() < deadline:
            time.sleep(0.5)
            live = running_cluster_costs()
        assert [c["name"] for c in live] == [name]
        assert "Running Dask clusters" in clusters_html(live)
        # stopping the owner's server stops the owner's clusters
        stack.stop_server("gw-a")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and gw_a.list_clusters():
            time.sleep(0.5)
        assert gw_a.list_clusters() == []
    finally:
        gw_a.close()
        gw_b.close()
