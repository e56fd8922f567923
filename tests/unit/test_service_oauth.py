"""The lens service's browser login: the OAuth callback finishes a login with the
same HubOAuth (state, PKCE verifier) that made the redirect, and never sends the
browser off-site. End to end in Chromium: tests/browser/test_admin_pages.py."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from jupyter_ext.service.base import LensPageHandler
from jupyter_ext.service.oauth import LensHubOAuth, LensOAuthCallbackHandler, is_local_path

PREFIX = "/services/lens/"


def make_auth() -> LensHubOAuth:
    return LensHubOAuth(
        api_token="unused-token",
        api_url="http://127.0.0.1:9/hub/api/",
        hub_prefix="/hub/",
        base_url=PREFIX,
        oauth_client_id="service-lens",
        oauth_redirect_uri=f"{PREFIX}oauth_callback",
        access_scopes={"access:services!service=lens"},
    )


class Page(LensPageHandler):
    @web.authenticated
    def get(self):
        self.finish("never reached without a login")


class Lens:  # what LensHandler needs from the service application: its log and body limit
    import logging

    log = logging.getLogger("test-lens")
    max_request_bytes = 1 << 20


@pytest.mark.parametrize("url", ["/services/lens/admin", "/services/lens/admin/costs?days=7", "/"])
def test_local_paths_are_kept(url):
    assert is_local_path(url)
    auth = make_auth()
    assert auth.get_next_url(auth.generate_state(url)) == url


@pytest.mark.parametrize("url", [
    "//evil.example/", "https://evil.example/", "http://evil.example/services/lens/admin", "/\\evil.example/",
    "\\\\evil.example", "/\t/evil.example/", "javascript:alert(1)", "evil.example", "", None,
])
def test_off_site_next_urls_fall_back_to_the_service(url):
    assert not is_local_path(url)
    auth = make_auth()
    assert auth.get_next_url(auth.generate_state(url)) == PREFIX
    assert auth.get_next_url("a-state-nobody-made") == PREFIX


class HubTokenEndpoint(web.RequestHandler):
    """The hub's side of the code exchange, as JupyterHub 6.1 checks it: a code issued
    with a PKCE challenge is exchanged only with the matching verifier."""

    def post(self):
        challenge = self.settings["challenges"].get(self.get_argument("code"))
        verifier = self.get_argument("code_verifier", None)
        if challenge and not verifier:
            raise web.HTTPError(400, "Code verifier required")
        digest = hashlib.sha256((verifier or "").encode()).digest()
        if challenge and base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
            raise web.HTTPError(400, "Code verifier does not match")
        self.finish({"access_token": "browser-token", "token_type": "Bearer"})


class HubUser(web.RequestHandler):
    def get(self):
        self.finish({"kind": "user", "name": "ada", "admin": True, "scopes": ["access:services!service=lens"]})


async def test_the_callback_finishes_the_login_with_the_pkce_verifier_of_the_redirect():
    auth = make_auth()
    challenges: dict[str, str] = {}
    app = web.Application(
        [(rf"{PREFIX}admin", Page), (rf"{PREFIX}oauth_callback", LensOAuthCallbackHandler),
         (r"/hub/api/oauth2/token", HubTokenEndpoint), (r"/hub/api/user", HubUser)],
        hub_auth=auth, lens=Lens(), cookie_secret=b"x" * 32, challenges=challenges,
    )
    sock, port = bind_unused_port()
    auth.api_url = f"http://127.0.0.1:{port}/hub/api/"
    server = HTTPServer(app)
    server.add_sockets([sock])
    client = AsyncHTTPClient()
    base = f"http://127.0.0.1:{port}"
    try:
        r = await client.fetch(f"{base}{PREFIX}admin?days=3", follow_redirects=False, raise_error=False)
        assert r.code == 302, r.body
        location = urlsplit(r.headers["Location"])
        assert location.path == "/hub/api/oauth2/authorize"
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert query["code_challenge_method"] == "S256"
        challenges["the-code"] = query["code_challenge"]
        state_cookie = r.headers["Set-Cookie"].split(";", 1)[0]
        assert "-oauth-state=" in state_cookie

        # the hub sends the browser back with a code: the callback exchanges it with the
        # verifier the redirect stored, logs the browser in and returns to the page
        r = await client.fetch(f"{base}{PREFIX}oauth_callback?code=the-code&state={query['state']}",
                               headers={"Cookie": state_cookie}, follow_redirects=False, raise_error=False)
        assert r.code == 302, r.body
        assert r.headers["Location"] == f"{PREFIX}admin?days=3"
        assert any(c.startswith(f"{auth.cookie_name}=") for c in r.headers.get_list("Set-Cookie"))

        # a state the service never made is refused (it cannot name a page, on-site or off)
        r = await client.fetch(f"{base}{PREFIX}oauth_callback?code=the-code&state=//evil.example/",
                               headers={"Cookie": state_cookie}, follow_redirects=False, raise_error=False)
        assert r.code == 403 and "evil" not in r.headers.get("Location", "")
    finally:
        server.stop()
