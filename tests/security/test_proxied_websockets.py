"""Proxied websockets refuse connections without credentials and from another
user: the class of jupyter-server-proxy CVE-2024-28179 (its websocket handler
skipped authentication). Real handshakes against the real stack: code-server
behind jupyter-server-proxy in the user's server, the server's own kernel
channels, and the Dask dashboard (HTTP and websockets), which the lens service
fronts so that only the cluster's owner gets through (issue #13 §11)."""

from __future__ import annotations

import asyncio
import gc
import http.client
import os
import re
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from spawners.availability import local_unavailability
from spawners.profiles import load_catalog
from tests.conftest import require
from tests.support.hub import REPO

pytestmark = pytest.mark.integration
OWNER, OTHER = "wsowner", "wsother"
OTHER_PASSWORD = "wsother-password-1"
OWNER_PASSWORD = "wsowner-password-1"


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


ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="clusters run as the users' unix accounts: needs root")


@pytest.fixture(scope="module")
def cluster(stack, people):
    """A running cluster of the owner's, made with the owner's token as a notebook would."""
    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    gw = Gateway(address=f"{stack.url}/services/dask-gateway",
                 proxy_address=f"gateway://127.0.0.1:{stack.env['LENS_GATEWAY_PROXY_PORT']}",
                 auth=JupyterHubAuth(api_token=people["owner"]))
    made = gw.new_cluster(shutdown_on_close=False)
    name, link = made.name, made.dashboard_link
    made = None
    gc.collect()  # while the gateway's loop runs (dask-gateway's __del__ needs it)
    try:
        yield {"name": name, "link": link, "base": link.rsplit("/", 1)[0]}  # base: .../clusters/NAME
    finally:
        gw.stop_cluster(name)
        gw.close()


@pytest.fixture(scope="module")
def owner_password(stack, people):
    """The owner gets a password too, to log in as a browser does (no token anywhere)."""
    stack.add_account(OWNER, OWNER_PASSWORD)
    return OWNER_PASSWORD


def cookie_header(session: requests.Session, url: str) -> str:
    """The Cookie header a browser sends to URL (path-scoped cookies included)."""
    prepared = requests.Request("GET", url).prepare()
    prepared.prepare_cookies(session.cookies)
    return prepared.headers.get("Cookie", "")


@ROOT_ONLY
def test_dask_dashboard_http(stack, people, cluster, owner_password):
    page = f"{cluster['base']}/info/main/logs.html"  # distributed's own page: needs no Bokeh
    owner = {"Authorization": f"token {people['owner']}"}
    # the owner's token (dask-labextension, scripts): the scheduler's page, through the hop
    r = requests.get(page, headers=owner, allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "Logs" in r.text, r.status_code
    assert requests.get(cluster["link"], headers=owner, allow_redirects=False, timeout=30).status_code == 200

    # nobody: 401, or the hub's login for a browser; never the page
    r = requests.get(page, allow_redirects=False, timeout=30)
    assert r.status_code == 401 and "Logs" not in r.text
    r = requests.get(page, headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]
    # another user's token: 403; in a page's URL it is no credential at all (JupyterHub's allow_token_in_url)
    r = requests.get(page, headers={"Authorization": f"token {people['other']}"}, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "Logs" not in r.text
    r = requests.get(f"{page}?token={people['other']}", allow_redirects=False, timeout=30)
    assert r.status_code == 401 and "Logs" not in r.text
    # another user's browser, through the whole hub login: 403
    stranger = stack.login_session(OTHER, OTHER_PASSWORD)
    r = stranger.get(page, headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 403 and "not one of your Dask clusters" in r.text
    # a cluster that does not exist looks the same as another user's
    r = requests.get(f"{cluster['base'].rsplit('/', 1)[0]}/{uuid.uuid4().hex}/info/main/logs.html", headers=owner,
                     allow_redirects=False, timeout=30)
    assert r.status_code == 403

    # a path naming the owner's cluster that climbs out of it into another: refused, whether the hub's
    # proxy cleans it first (then the hop judges the other name: 403) or the hop sees it raw (400).
    # A hop judging the first name and a later hop cleaning the path would answer the Go proxy's 404.
    # Sent raw: requests (urllib3) would remove the dot segments itself.
    url = urlsplit(cluster["base"])
    elsewhere = uuid.uuid4().hex
    for tail in (f"/../{elsewhere}/info/main/logs.html", f"/%2e%2e/{elsewhere}/info/main/logs.html",
                 f"%2f..%2f{elsewhere}/info/main/logs.html"):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", url.path + tail, headers=owner)
        answer = conn.getresponse()
        assert answer.status in (400, 403) and b"Logs" not in answer.read(), (tail, answer.status)
        conn.close()

    # the owner's browser: hub login -> OAuth through the hub -> the page (cluster.dashboard_link works)
    s = stack.login_session(OWNER, owner_password)
    r = s.get(page, headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 200 and "Logs" in r.text and r.url == page
    assert s.get(cluster["link"], timeout=30).status_code == 200


@ROOT_ONLY
def test_dask_dashboard_websocket(stack, people, cluster, owner_password):
    ws = f"{cluster['base'].replace('http', 'ws', 1)}/eventstream"
    check(ws, people, stack.url)  # no credentials, another's token (header, URL) or hub cookies; owner's token opens
    # browsers: the dashboard cookie of a hub login opens the owner's, not another user's
    page = f"{cluster['base']}/info/main/logs.html"
    owner = stack.login_session(OWNER, owner_password)
    assert owner.get(page, headers={"Accept": "text/html"}, timeout=30).status_code == 200
    assert handshake(ws, {"Cookie": cookie_header(owner, ws), "Origin": stack.url}) == 101
    # the same cookies from another site's page: refused (cross-site websocket hijacking)
    assert handshake(ws, {"Cookie": cookie_header(owner, ws), "Origin": "http://evil.example"}) == 403
    stranger = stack.login_session(OTHER, OTHER_PASSWORD)
    assert stranger.get(page, headers={"Accept": "text/html"}, timeout=30).status_code == 403
    assert "dask-dashboards" in cookie_header(stranger, ws)  # logged in, yet not the owner
    assert handshake(ws, {"Cookie": cookie_header(stranger, ws), "Origin": stack.url}) == 403



@ROOT_ONLY
def test_dask_dashboard_link_in_a_real_browser(stack, people, cluster, owner_password):
    """Chromium: the hub's login form, then cluster.dashboard_link's page and a websocket
    opened by the page itself (the browser's own cookie paths, Origin and Sec-Fetch-Mode)."""
    from tests.support.browser import chromium_browser

    page_url = f"{cluster['base']}/info/main/logs.html"
    ws_url = f"{cluster['base'].replace('http', 'ws', 1)}/eventstream"
    opens = f"""() => new Promise(done => {{
        const ws = new WebSocket({ws_url!r});
        ws.onopen = () => {{ ws.close(); done("open"); }};
        ws.onerror = () => done("refused");
    }})"""
    with chromium_browser() as chromium:
        for who, password, allowed in ((OWNER, owner_password, True), (OTHER, OTHER_PASSWORD, False)):
            context = chromium.new_context(base_url=stack.url)
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.goto("/hub/login?next=%2Fhub%2Fhome")  # the owner's running server would be the default
            page.fill("#username_input", who)
            page.fill("#password_input", password)
            page.click("#login_submit")
            page.wait_for_url(re.compile(r"/hub/home"))
            response = page.goto(cluster["link"])  # through the hub's OAuth, back to the dashboard
            assert page.url == cluster["link"] and response.status == (200 if allowed else 403), (who, response.status)
            response = page.goto(page_url)
            assert response.status == (200 if allowed else 403) and ("Logs" in page.content()) == allowed
            assert page.evaluate(opens) == ("open" if allowed else "refused"), who
            context.close()
