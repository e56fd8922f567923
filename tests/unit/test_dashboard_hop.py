"""The Dask dashboard hop's pure rules: what reaches the scheduler, and the owner cache."""

from __future__ import annotations

import re

from tornado.httputil import HTTPHeaders

from jupyter_ext.service.dashboard_routes import (
    OwnerCache,
    escapes_its_cluster,
    forwarded_cookies,
    upstream_headers,
    without_credentials,
)

HUB_COOKIE = re.compile(r"^(jupyterhub-|_xsrf$|service-lens$|service-lens-dask-dashboards$)")


def test_a_token_in_the_url_is_not_forwarded():
    assert without_credentials("token=abc&x=1&tokens=2") == "x=1&tokens=2"
    assert without_credentials("") == ""


def test_hub_and_lens_cookies_are_not_forwarded():
    header = ("jupyterhub-session-id=s; jupyterhub-hub-login=h; service-lens=l; "
              "service-lens-dask-dashboards=d; _xsrf=x; bokeh-session=b")
    assert forwarded_cookies(header, HUB_COOKIE) == "bokeh-session=b"
    assert forwarded_cookies("", HUB_COOKIE) == ""


def test_headers_lose_credentials_and_hop_by_hop_fields():
    headers = HTTPHeaders({"Authorization": "token secret", "Cookie": "service-lens=l; a=1", "Connection": "close",
                           "Accept": "text/html", "Sec-WebSocket-Key": "k", "Upgrade": "websocket"})
    plain = upstream_headers(headers, HUB_COOKIE, websocket=False)
    assert dict(plain.get_all()) == {"Cookie": "a=1", "Accept": "text/html", "Sec-Websocket-Key": "k"}
    ws = upstream_headers(headers, HUB_COOKIE, websocket=True)  # the client library makes its own handshake
    assert "Sec-Websocket-Key" not in ws and "Authorization" not in ws and "Upgrade" not in ws


async def test_owners_are_cached_but_unknown_clusters_are_asked_again():
    asked = []
    owners = {"c1": "ann"}

    async def lookup(name):
        asked.append(name)
        return owners.get(name)

    cache = OwnerCache(lookup, size=2)
    assert [await cache.owner("c1"), await cache.owner("c1")] == ["ann", "ann"]
    assert await cache.owner("c2") is None
    owners["c2"] = "bob"  # created a moment later
    assert await cache.owner("c2") == "bob"
    assert asked == ["c1", "c2", "c2"]
    owners["c3"] = "cy"
    await cache.owner("c3")  # the bound drops the least recently used (c1)
    assert list(cache.owners) == ["c2", "c3"]


def test_paths_that_could_leave_their_cluster_are_caught():
    base = "/services/dask-gateway/clusters/mine"
    for path in (f"{base}/../theirs/status", f"{base}/%2e%2e/theirs/status", f"{base}/%2E%2E/theirs",
                 f"{base}%2f..%2ftheirs/status", f"{base}/.%2e/theirs", f"{base}/./status", f"{base}\\..\\theirs"):
        assert escapes_its_cluster(path), path
    for path in (f"{base}/status", f"{base}/info/main/logs.html", f"{base}/statics/images/python.png",
                 f"{base}/individual-task-stream", f"{base}/...json"):
        assert not escapes_its_cluster(path), path
