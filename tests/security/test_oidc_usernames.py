"""OIDC logins (LensOAuthenticator, GenericOAuthenticator's subclass) never merge
identity-provider subjects that differ only by case, and never make a hub user of
a Unicode look-alike: against a real hub and the real oidc-provider-mock, the
same provider tests/integration/test_oidc.py logs in with."""

from __future__ import annotations

import pytest
import requests

from tests.security.live_stack import running_stack
from tests.support.moto import free_port

pytestmark = pytest.mark.integration

UUID_SUBJECT = "3f2a9c1e-7b4d-4e1a-9c55-0d2b8e6f1a77"


@pytest.fixture(scope="module")
def oidc_stack():
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
    port = free_port()
    with oidc_provider_mock.run_server_in_thread(port=port):
        issuer = f"http://127.0.0.1:{port}"
        conf = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        env = dict(
            LENS_AUTH="oidc",
            LENS_OIDC_CLIENT_ID="lens-hub",
            LENS_OIDC_CLIENT_SECRET="not-checked-by-the-mock",
            LENS_OIDC_AUTHORIZE_URL=conf["authorization_endpoint"],
            LENS_OIDC_TOKEN_URL=conf["token_endpoint"],
            LENS_OIDC_USERDATA_URL=conf["userinfo_endpoint"],
        )
        with running_stack(extra_env=env, admin_login=False, callback="/hub/oauth_callback") as hub:
            yield hub


def oidc_login(stack, subject: str) -> tuple[requests.Response, requests.Session]:
    """The browser's OAuth dance with the provider's login form answered as SUBJECT."""
    s = requests.Session()
    r = s.get(f"{stack.url}/hub/oauth_login?next=/hub/home", allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    r = s.post(r.headers["Location"], data={"sub": subject}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(f"{stack.url}/hub/oauth_callback")
    return s.get(r.headers["Location"], allow_redirects=False, timeout=30), s


def whoami(stack, session: requests.Session) -> str | None:
    r = session.get(f"{stack.url}/hub/api/user", headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
                    timeout=10)
    return r.json()["name"] if r.status_code == 200 else None


def admin_token(stack) -> str:
    r, s = oidc_login(stack, "admin")  # lens.yaml's admin_user, an admin by name
    assert r.status_code == 302, r.text
    r = s.post(f"{stack.url}/hub/api/users/admin/tokens", json={"note": "tests", "expires_in": 600},
               headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]


def hub_names(stack, token) -> set[str]:
    r = stack.api("GET", "/users", token=token)
    assert r.status_code == 200, r.text
    return {u["name"] for u in r.json()}


@pytest.mark.parametrize("subject", ["ada", UUID_SUBJECT, "ada.lovelace@example.org"])
def test_a_folded_ascii_subject_logs_in_as_itself(oidc_stack, subject):
    r, s = oidc_login(oidc_stack, subject)
    assert r.status_code == 302, r.text
    assert whoami(oidc_stack, s) == subject


@pytest.mark.parametrize("subject", [
    "Ada", "ADA",  # another subject than "ada" (OIDC subjects are case-sensitive)
    "ａｄａ",  # fullwidth
    "аda",  # Cyrillic a
    "adı",  # dotless i
    "\u212ada",  # KELVIN SIGN
])
def test_a_subject_differing_by_case_or_look_alike_is_refused(oidc_stack, subject):
    token = admin_token(oidc_stack)
    first, _ = oidc_login(oidc_stack, "ada")
    assert first.status_code == 302
    before = hub_names(oidc_stack, token)
    r, s = oidc_login(oidc_stack, subject)
    assert r.status_code == 403, (subject, r.status_code)
    assert "Ask an admin." in r.text and "Traceback" not in r.text  # the reason, on the hub's page
    assert whoami(oidc_stack, s) is None  # not logged in, least of all as ada
    assert hub_names(oidc_stack, token) == before  # and no look-alike hub user was made


def test_the_rest_api_folds_names_as_the_login_does(oidc_stack):
    token = admin_token(oidc_stack)
    oidc_login(oidc_stack, "ada")
    before = hub_names(oidc_stack, token)
    for name in ("ADA", "ａｄａ", "аda"):
        r = oidc_stack.api("POST", f"/users/{name}", token=token)
        assert r.status_code in (400, 409), (name, r.status_code, r.text)
    assert hub_names(oidc_stack, token) == before
