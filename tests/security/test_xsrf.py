"""Non-GET routes of the lens service refuse cookie authentication without XSRF.

A browser logged in to the hub (and, through the hub's OAuth, to the lens
service) carries cookies that any other site can make it send. Every POST, PUT,
PATCH and DELETE route of the service must therefore ignore those cookies
unless the request also carries the ``X-XSRFToken`` header matching the
service's ``_xsrf`` cookie. The routes are read from the service's own route
modules (``LensService.area_modules`` + core handlers), so a new route is
covered without touching this file.
"""

from __future__ import annotations

import re

import pytest
import requests
from tornado import web

from tests.support.hub import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

PREFIX = "/services/lens/"
WRITE_METHODS = ("post", "put", "patch", "delete")
# values for the capture groups of route patterns (the first that matches is used)
GROUP_SAMPLES = ("j-xsrfprobe", "xsrfprobe", "xsrf-probe", "1")
# What a browser's fetch() from a page adds; cookies are what an attacker's page rides on.
BROWSER = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}


def _groups(pattern: str) -> list[tuple[int, int]]:
    """(start, end) of each top-level capture group in PATTERN."""
    spans, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
        i += 1
    return spans


def sample_path(pattern: str) -> str:
    """A concrete path matched by the tornado route PATTERN."""
    out, last = [], 0
    for start, end in _groups(pattern):
        out.append(pattern[last:start])
        group = pattern[start:end]
        out.append(next(s for s in GROUP_SAMPLES if re.fullmatch(group, s)))
        last = end
    out.append(pattern[last:])
    path = "".join(out).replace("/?", "/").replace("\\.", ".").rstrip("$")
    assert re.fullmatch(pattern, path), (pattern, path)
    return path


def write_routes(monkeypatch, tmp_path) -> list[tuple[str, str, str]]:
    """(METHOD, path, handler) for every non-GET method of the service's routes."""
    from jupyter_ext.service.app import LensService
    from jupyter_ext.service.handlers import core_handlers

    monkeypatch.setenv("LENS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LENS_GATEWAY_TOKEN", "unused")  # the Dask area registers its routes too
    for key, value in dict(JUPYTERHUB_API_TOKEN="unused", JUPYTERHUB_CLIENT_ID="service-lens",
                           JUPYTERHUB_SERVICE_PREFIX=PREFIX, JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",
                           JUPYTERHUB_OAUTH_CALLBACK_URL=f"{PREFIX}oauth_callback").items():
        monkeypatch.setenv(key, value)
    service = LensService(db_url=f"sqlite:///{tmp_path}/lens.sqlite")
    service.initialize([])
    routes = []
    for pattern, handler, *_ in [*service.area_handlers(PREFIX), *core_handlers(PREFIX)]:
        for method in WRITE_METHODS:
            if getattr(handler, method) is not getattr(web.RequestHandler, method):
                routes.append((method.upper(), sample_path(pattern), handler.__name__))
    service.engine.dispose()
    return routes


def test_the_route_list_is_read_from_the_service(monkeypatch, tmp_path):
    routes = write_routes(monkeypatch, tmp_path)
    names = {handler for _, _, handler in routes}
    # today's write routes; a new one is picked up by write_routes without editing this
    assert {"JobsHandler", "JobHandler", "BudgetHoldHandler", "ArchiveCatalogHandler"} <= names
    assert ("DELETE", f"{PREFIX}api/jobs/j-xsrfprobe", "JobHandler") in routes


def service_session(stack) -> requests.Session:
    """The admin logged in through the hub's login form, then through the hub's OAuth
    into the lens service (its admin page), as a browser does."""
    s = stack.login_session("admin", ADMIN_PASSWORD)
    r = s.get(f"{stack.url}{PREFIX}admin/", timeout=60)
    assert r.status_code == 200 and r.url.endswith(f"{PREFIX}admin/"), (r.status_code, r.url)
    assert s.cookies.get("_xsrf", path=PREFIX.rstrip("/")) or s.cookies.get("_xsrf", path=PREFIX)
    return s


def service_xsrf(s: requests.Session) -> str:
    for cookie in s.cookies:
        if cookie.name == "_xsrf" and cookie.path.rstrip("/") == PREFIX.rstrip("/"):
            return cookie.value
    raise AssertionError(f"no _xsrf cookie for {PREFIX}: {[(c.name, c.path) for c in s.cookies]}")


def message(r: requests.Response) -> str:
    try:
        return r.json().get("message", "")
    except ValueError:
        return r.text


def test_every_write_route_refuses_cookies_without_xsrf(stack, monkeypatch, tmp_path):
    routes = write_routes(monkeypatch, tmp_path)
    assert routes
    s = service_session(stack)
    xsrf = service_xsrf(s)
    # the cookie session is real: a plain GET (a navigation: no XSRF needed) knows the admin
    me = s.get(f"{stack.url}{PREFIX}api/me", timeout=30)
    assert me.status_code == 200 and me.json()["name"] == "admin", me.text
    for method, path, handler in routes:
        url = f"{stack.url}{path}"
        for label, extra in [("no header", {}), ("no header, no fetch metadata", None),
                             ("wrong header", {"X-XSRFToken": "2|0|forged|0"})]:
            headers = {} if extra is None else {**BROWSER, **extra}
            r = s.request(method, url, json={}, headers=headers, allow_redirects=False, timeout=30)
            assert r.status_code == 403, (method, path, handler, label, r.status_code, r.text)
            assert "Authentication required" in message(r), (method, path, label, r.text)
        # the same request with the token is authenticated: whatever it answers, not "who are you"
        r = s.request(method, url, json={}, headers={**BROWSER, "X-XSRFToken": xsrf}, allow_redirects=False,
                      timeout=30)
        assert "Authentication required" not in message(r), (method, path, handler, r.status_code, r.text)
        assert r.status_code < 500, (method, path, r.text)


def test_a_token_needs_no_xsrf(stack):
    """API clients authenticate with a token header, which a foreign page cannot set."""
    r = requests.post(f"{stack.url}{PREFIX}api/jobs/estimate", json={},
                      headers={"Authorization": f"token {stack.admin_token}"}, timeout=30)
    assert "Authentication required" not in message(r), r.text
