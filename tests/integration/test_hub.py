"""The real local stack over REST: users, profiles, spawn, the lens service."""

from __future__ import annotations

import os
import time

import pytest
import requests

from spawners.availability import local_unavailability
from spawners.profiles import load_catalog
from tests.support.hub import REPO

pytestmark = pytest.mark.integration
CATALOG = load_catalog(REPO / "hub_config" / "profiles.yaml")


def available_profiles(stack) -> list[str]:
    os.environ.setdefault("LENS_CODE_SERVER_PREFIX", stack.env["LENS_CODE_SERVER_PREFIX"])
    gone = local_unavailability(CATALOG)
    return [p.slug for p in CATALOG.profiles if p.slug not in gone]


def test_lab_and_vscode_are_available_here(stack):
    slugs = available_profiles(stack)
    assert "lab" in slugs
    assert "vscode" in slugs, "code-server must be installed by `make test`"
    assert "rstudio" not in slugs and "gpu" not in slugs


@pytest.mark.parametrize("profile", ["lab", "vscode"])
def test_spawn_reach_status_and_stop(stack, profile):
    name = f"spawn-{profile}"
    token = stack.create_user(name)
    r = stack.spawn(name, profile)
    assert r.status_code in (201, 202), r.text
    status = requests.get(f"{stack.url}/user/{name}/api/status", headers={"Authorization": f"token {token}"}, timeout=10)
    assert status.status_code == 200
    assert "started" in status.json()
    lens = requests.get(f"{stack.url}/user/{name}/lens/api/status", headers={"Authorization": f"token {token}"}, timeout=10)
    assert lens.status_code == 200
    assert lens.json()["profile"] == profile
    if profile == "vscode":
        r = requests.get(f"{stack.url}/user/{name}/vscode/", headers={"Authorization": f"token {token}"}, timeout=60)
        assert r.status_code == 200, r.status_code
    model = stack.api("GET", f"/users/{name}").json()
    assert model["servers"][""]["user_options"]["profile"] == profile
    stack.stop_server(name)


def test_unknown_profile_is_400_with_plain_message(stack):
    stack.create_user("bad-profile")
    r = stack.api("POST", "/users/bad-profile/server", json={"profile": "nope"})
    assert r.status_code == 400
    assert "Unknown profile 'nope'" in r.json()["message"]
    assert "Traceback" not in r.text
    assert not stack.api("GET", "/users/bad-profile").json()["servers"]


def test_unavailable_profile_is_400(stack):
    stack.create_user("no-rstudio")
    r = stack.api("POST", "/users/no-rstudio/server", json={"profile": "rstudio"})
    assert r.status_code == 400
    assert "not available" in r.json()["message"]
    assert not stack.api("GET", "/users/no-rstudio").json()["servers"]


def test_group_forbidden_profile_is_403(stack):
    stack.create_user("no-gpu")
    r = stack.api("POST", "/users/no-gpu/server", json={"profile": "gpu"})
    assert r.status_code == 403
    assert "limited to the groups: gpu-users" in r.json()["message"]


def test_lens_service_access_matrix(stack):
    url = f"{stack.url}/services/lens/api"
    alice = stack.create_user("alice")
    bob = stack.create_user("bob")
    # no token
    assert requests.get(f"{url}/health", timeout=10).status_code in (401, 403)
    assert requests.get(f"{url}/users/alice", timeout=10).status_code in (401, 403)
    # the user's own token
    r = requests.get(f"{url}/users/alice", headers={"Authorization": f"token {alice}"}, timeout=10)
    assert r.status_code == 200 and r.json()["name"] == "alice"
    r = requests.get(f"{url}/health", headers={"Authorization": f"token {alice}"}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    # another user's token
    r = requests.get(f"{url}/users/alice", headers={"Authorization": f"token {bob}"}, timeout=10)
    assert r.status_code == 403
    assert "message" in r.json()
    # admin
    r = requests.get(f"{url}/users/alice", headers={"Authorization": f"token {stack.admin_token}"}, timeout=10)
    assert r.status_code == 200
    # admin page: users are refused, admins see it
    r = requests.get(f"{stack.url}/services/lens/admin", headers={"Authorization": f"token {alice}"}, timeout=10)
    assert r.status_code == 403
    r = requests.get(f"{stack.url}/services/lens/admin", headers={"Authorization": f"token {stack.admin_token}"}, timeout=10)
    assert r.status_code == 200 and "lens admin" in r.text
    # internal routes are for the hub's own services only
    r = requests.post(f"{url}/meter/servers", json={}, headers={"Authorization": f"token {alice}"}, timeout=10)
    assert r.status_code == 403


def test_server_gets_lens_url_and_a_token_that_reaches_the_service(stack):
    name = "envcheck"
    stack.create_user(name)
    stack.spawn(name, "lab")
    try:
        # Run code in the user's server through its own kernel-less terminal-free API:
        # the extension reports LENS_SERVICE_URL; the server's token calls the service.
        token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 600}).json()["token"]
        st = requests.get(f"{stack.url}/user/{name}/lens/api/status", headers={"Authorization": f"token {token}"}, timeout=10).json()
        assert st["service_url"].endswith("/services/lens/")
        r = requests.get(f"{stack.url}/user/{name}/lens/api/service-check",
                         headers={"Authorization": f"token {token}"}, timeout=20)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == name
        # the JupyterLab status bar's one call: this server's rate and its user's budget
        r = requests.get(f"{stack.url}/user/{name}/lens/api/summary",
                         headers={"Authorization": f"token {token}"}, timeout=20)
        assert r.status_code == 200, r.text
        summary = r.json()
        assert summary["profile"] == "lab" and summary["hourly_cost_usd"] == st["hourly_cost"] > 0
        assert summary["budget_usd"] is None and summary["level"] == "none"
        # no token: refused, as JSON, before anything reaches the service
        r = requests.get(f"{stack.url}/user/{name}/lens/api/summary", timeout=20, allow_redirects=False)
        assert r.status_code in (302, 403), r.status_code
    finally:
        stack.stop_server(name)


def test_spawn_events_are_metered(stack):
    name = "metered"
    stack.create_user(name)
    stack.spawn(name, "lab")
    stack.stop_server(name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = stack.api("GET", "/users/metered")  # keep hub busy-free; check service
        r = requests.get(f"{stack.url}/services/lens/api/users/{name}",
                         headers={"Authorization": f"token {stack.admin_token}"}, timeout=10)
        if r.json().get("server_events") == 2:
            break
        time.sleep(0.3)
    assert r.json()["server_events"] == 2


def test_password_login_flow(stack):
    stack.add_account("penny", "penny-password-1")
    s = stack.login_session("penny", "penny-password-1")
    assert s.get(f"{stack.url}/hub/home", timeout=10).status_code == 200
    with pytest.raises(RuntimeError, match="403"):
        stack.login_session("penny", "wrong-password-1")
    # a disabled account is told so, not "invalid password"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", "users", "--state", str(stack.state), "disable", "penny"],
                   check=True, capture_output=True, env=stack.env)
    s = requests.Session()
    s.get(f"{stack.url}/hub/login", timeout=10)
    r = s.post(f"{stack.url}/hub/login", data={"username": "penny", "password": "penny-password-1",
                                                "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30)
    assert r.status_code == 403
    assert "This account has been disabled." in r.text


def test_spawn_form_shows_profiles_with_prices(stack):
    stack.add_account("formy", "formy-password-1")
    s = stack.login_session("formy", "formy-password-1")
    r = s.get(f"{stack.url}/hub/spawn", timeout=30)
    assert r.status_code == 200
    assert 'data-profile="lab"' in r.text and "$0.096/h" in r.text
    assert 'value="rstudio" disabled' in r.text and "rserver" in r.text
    assert 'data-profile="gpu"' not in r.text
