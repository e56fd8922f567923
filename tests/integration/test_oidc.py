"""Production auth: GenericOAuthenticator against a real local OIDC provider."""

from __future__ import annotations

import pytest
import requests

from tests.support.hub import make_stack
from tests.support.moto import free_port

pytestmark = pytest.mark.integration


def test_login_through_a_real_oidc_provider(tmp_path):
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
    port = free_port()
    with oidc_provider_mock.run_server_in_thread(port=port):
        issuer = f"http://127.0.0.1:{port}"
        conf = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        stack = make_stack(tmp_path / "state")
        stack.env.update(
            LENS_AUTH="oidc",
            LENS_OIDC_CLIENT_ID="lens-hub",
            LENS_OIDC_CLIENT_SECRET="not-checked-by-the-mock",
            LENS_OIDC_AUTHORIZE_URL=conf["authorization_endpoint"],
            LENS_OIDC_TOKEN_URL=conf["token_endpoint"],
            LENS_OIDC_USERDATA_URL=conf["userinfo_endpoint"],
            LENS_OIDC_OAUTH_CALLBACK_URL=f"{stack.url}/hub/oauth_callback",
        )
        stack.start(admin_login=False)
        try:
            s = requests.Session()
            r = s.get(f"{stack.url}/hub/oauth_login?next=/hub/home", allow_redirects=False, timeout=10)
            assert r.status_code == 302
            authorize = r.headers["Location"]
            assert authorize.startswith(conf["authorization_endpoint"])
            r = s.post(authorize, data={"sub": "ada"}, allow_redirects=False, timeout=10)
            assert r.status_code == 302 and r.headers["Location"].startswith(f"{stack.url}/hub/oauth_callback")
            r = s.get(r.headers["Location"], timeout=30)
            assert r.status_code == 200
            assert r.url.endswith("/hub/home") or "/hub/spawn" in r.url
            r = s.get(f"{stack.url}/hub/api/user", headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=10)
            assert r.status_code == 200 and r.json()["name"] == "ada"
        finally:
            stack.stop()
