"""Proxied websockets refuse connections without credentials and from another
user: the class of jupyter-server-proxy CVE-2024-28179 (its websocket handler
skipped authentication). Real handshakes against the real stack: code-server
behind jupyter-server-proxy in the user's server, the server's own kernel
channels, and the Dask dashboard proxied by dask-gateway."""

from __future__ import annotations

import asyncio
import gc
import os
import uuid

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from spawners.availability import local_unavailability
from spawners.profiles import load_catalog
from tests.conftest import require
from tests.security.live_stack import running_stack
from tests.support.hub import REPO

pytestmark = pytest.mark.integration
OWNER, OTHER = "wsowner", "wsother"
OTHER_PASSWORD = "wsother-password-1"


@pytest.fixture(scope="module")
def stack():
    with running_stack(users=(OWNER, OTHER)) as hub:
        yield hub


@pytest.fixture(scope="module")
def people(stack):
    """The owner (token, vscode server running) and another user (token and hub cookies)."""
    os.environ.setdefault("LENS_CODE_SERVER_PREFIX", stack.env["LENS_CODE_SERVER_PREFIX"])
    gone = local_unavailability(load_catalog(REPO / "hub_config" / "profiles.yaml"))
    require("vscode" not in gone, f"code-server is not installed: {gone.get('vscode')}")
    owner = stack.create_user(OWNER)
    stack.add_account(OTHER, OTHER_PASSWORD)
    other = stack.login_token(OTHER, OTHER_PASSWORD)
    cookies = stack.login_session(OTHER, OTHER_PASSWORD).cookies
    r = stack.spawn(OWNER, "vscode")
    assert r.status_code in (201, 202), r.text
    yield {"owner": owner, "other": other, "other_cookie": "; ".join(f"{c.name}={c.value}" for c in cookies)}
    stack.stop_server(OWNER)


def handshake(url: str, headers: dict | None = None) -> int:
    """HTTP status of a websocket handshake: 101 when the connection opened."""
    async def go():
        request = HTTPRequest(url, headers=headers or {}, follow_redirects=False, request_timeout=60)
        try:
            conn = await websocket_connect(request)
        except HTTPClientError as exc:
            return exc.code
        conn.close()
        return 101
    return asyncio.run(go())


def strangers(people) -> dict[str, tuple[str, dict]]:
    """Ways to knock without being the owner: (query suffix, headers)."""
    return {
        "no credentials": ("", {}),
        "another user's token": ("", {"Authorization": f"token {people['other']}"}),
        "another user's token in the URL": (f"token={people['other']}", {}),
        "another user's hub cookies": ("", {"Cookie": people["other_cookie"]}),
    }


def check(url: str, people, origin: str) -> None:
    for label, (query, headers) in strangers(people).items():
        target = url + (("&" if "?" in url else "?") + query if query else "")
        assert handshake(target, {**headers, "Origin": origin}) in (302, 401, 403, 404), label
    # the same handshake as the owner opens: the refusals above are about who knocks
    assert handshake(url, {"Authorization": f"token {people['owner']}", "Origin": origin}) == 101


def test_code_server_websocket(stack, people):
    ws = stack.url.replace("http", "ws", 1)
    url = f"{ws}/user/{OWNER}/vscode/?reconnectionToken={uuid.uuid4()}&reconnection=false&skipWebSocketFrames=false"
    check(url, people, stack.url)


def test_kernel_channels_websocket(stack, people):
    r = requests.post(f"{stack.url}/user/{OWNER}/api/kernels", json={}, timeout=60,
                      headers={"Authorization": f"token {people['owner']}"})
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    try:
        check(f"{stack.url.replace('http', 'ws', 1)}/user/{OWNER}/api/kernels/{kernel}/channels", people, stack.url)
    finally:
        requests.delete(f"{stack.url}/user/{OWNER}/api/kernels/{kernel}", timeout=30,
                        headers={"Authorization": f"token {people['owner']}"})


@pytest.mark.skipif(os.geteuid() != 0, reason="clusters run as the users' unix accounts: needs root")
@pytest.mark.xfail(strict=True, reason=(
    "KNOWN VULNERABILITY: dask-gateway's proxy serves every cluster's scheduler dashboard "
    "(/services/dask-gateway/clusters/NAME/: status, logs, call stacks, the /eventstream "
    "websocket, the /proxy route to workers) with no authentication; the unguessable cluster "
    "name is the only secret. Fixing it needs an authenticating proxy in front of the dashboards "
    "(issue #13 §11)."))
def test_dask_dashboard_websocket(stack, people):
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    gw = Gateway(address=f"{stack.url}/services/dask-gateway",
                 proxy_address=f"gateway://127.0.0.1:{stack.env['LENS_GATEWAY_PROXY_PORT']}",
                 auth=JupyterHubAuth(api_token=people["owner"]))
    cluster = gw.new_cluster(shutdown_on_close=False)
    name = cluster.name
    try:
        dashboard = cluster.dashboard_link.rsplit("/", 1)[0]  # .../clusters/NAME
        assert requests.get(cluster.dashboard_link, timeout=30,
                            headers={"Authorization": f"token {people['owner']}"}).status_code == 200
        # a stranger's plain GET of the dashboard's pages must be refused too
        for label, (_query, headers) in strangers(people).items():
            r = requests.get(f"{dashboard}/info/main/logs.html", headers=headers, allow_redirects=False, timeout=30)
            assert r.status_code in (302, 401, 403, 404), (label, r.status_code)
        check(f"{dashboard.replace('http', 'ws', 1)}/eventstream", people, stack.url)
    finally:
        cluster = None
        gc.collect()  # while the gateway's loop runs (dask-gateway's __del__ needs it)
        gw.stop_cluster(name)
        gw.close()
