"""No leaks in errors or logs.

Error responses of the lens service, of the user server's lens handlers and of
the hub never carry a traceback, a token, a password or a cookie; and every log
the stack wrote while this module ran (the launcher's log, which gathers the
hub's, the proxy's, the services' and the user servers' output, plus every other
log file under the state directory) holds none of the secrets the test created
or the stack generated: API tokens, passwords, the AWS secret key (moto), the
service tokens and cookie secrets in ``state/secrets``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
import requests

from tests.security.conftest import AWS_SECRET
from tests.support.hub import ADMIN_PASSWORD

pytestmark = pytest.mark.integration

TRACE_MARKS = ("Traceback (most recent call last)", 'File "/', "site-packages", ".py\", line ")


@pytest.fixture(scope="module")
def who(stack):
    """A password account logged in through the hub's form, with a token and a running server."""
    name = f"leak-{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_urlsafe(16)}"
    stack.add_account(name, password)
    session = stack.login_session(name, password)
    token = stack.login_token(name, password)
    assert stack.spawn(name, "lab", token=token).status_code in (201, 202)
    yield {"name": name, "password": password, "token": token, "session": session}
    stack.stop_server(name)
    if os.geteuid() == 0:
        from tests.support.unix import remove_account

        remove_account(f"jupyter-{name}")


def known_secrets(stack, who) -> dict[str, str]:
    found = {"admin token": stack.admin_token, "user token": who["token"], "user password": who["password"],
             "admin password": ADMIN_PASSWORD, "AWS secret key": AWS_SECRET}
    for path in (stack.state / "secrets").iterdir():
        value = path.read_text(errors="replace").strip()
        if len(value) >= 16:
            found[f"state/secrets/{path.name}"] = value
    for cookie in who["session"].cookies:
        # not credentials: the XSRF token, and the session id JupyterHub itself logs when it
        # issues one ("Setting new xsrf cookie for b'SESSION:...'"); the login cookie is checked
        if cookie.value and len(cookie.value) >= 16 and cookie.name not in ("_xsrf", "jupyterhub-session-id"):
            found[f"cookie {cookie.name}"] = cookie.value
    return found


def assert_clean(text: str, secrets_: dict[str, str], what: str) -> None:
    for mark in TRACE_MARKS:
        assert mark not in text, f"{what}: a traceback ({mark!r}):\n{text[:2000]}"
    for label, value in secrets_.items():
        assert value not in text, f"{what}: carries the {label}"


def test_error_responses_carry_no_tracebacks_tokens_or_cookies(stack, who):
    name, token = who["name"], who["token"]
    auth = {"Authorization": f"token {token}"}
    bad = {"Authorization": f"token {token}x"}
    svc, srv, hub = f"{stack.url}/services/lens", f"{stack.url}/user/{name}", f"{stack.url}/hub"
    cases = [
        # the lens service
        ("POST", f"{svc}/api/jobs", dict(headers=auth, data=b"{not json")),
        ("POST", f"{svc}/api/jobs", dict(headers=auth, json={"spec": {"name": "x; id", "command": ["true"]}})),
        ("GET", f"{svc}/api/jobs/j-does-not-exist", dict(headers=auth)),
        ("DELETE", f"{svc}/api/jobs/j-does-not-exist", dict(headers=auth)),
        ("GET", f"{svc}/api/jobs/j-does-not-exist/logs?tail=many", dict(headers=auth)),
        ("PUT", f"{svc}/api/health", dict(headers=auth)),
        ("GET", f"{svc}/api/no-such-route?token={token}", dict()),
        ("GET", f"{svc}/api/me", dict(headers=bad)),
        ("GET", f"{svc}/api/users/admin", dict(headers=auth)),
        ("POST", f"{svc}/api/archives", dict(headers=auth, json={"name": "no id"})),
        # forced: an infinite size reaches int() (OverflowError) -> the 500 path
        ("POST", f"{svc}/api/archives", dict(headers={**auth, "Content-Type": "application/json"},
                                             data=b'{"archive_id": "a1", "name": "n", "size": 1e999}')),
        ("GET", f"{svc}/admin/costs?days=forever", dict(headers=auth)),
        ("POST", f"{svc}/api/jobs", dict(headers=auth, data=b"[" * 100_000)),
        # the user server's lens handlers
        ("GET", f"{srv}/lens/api/service/secrets", dict(headers=auth)),
        ("POST", f"{srv}/lens/api/service/jobs", dict(headers=auth, data=b"{not json")),
        ("GET", f"{srv}/lens/api/service/jobs/j-does-not-exist", dict(headers=auth)),
        ("PUT", f"{srv}/lens/api/status", dict(headers=auth)),
        ("POST", f"{srv}/lens/api/archives", dict(headers=auth, data=b"{not json")),
        ("POST", f"{srv}/lens/api/archives", dict(headers=auth, json={"paths": ["/etc/shadow"], "name": "x"})),
        ("GET", f"{srv}/lens/api/archives/tasks/0123456789abcdef", dict(headers=auth)),
        ("GET", f"{srv}/lens/api/status", dict(headers=bad)),
        ("GET", f"{srv}/lens/api/status?token={token}x", dict()),
        # the hub
        ("GET", f"{hub}/api/users/no-such-user", dict(headers={"Authorization": f"token {stack.admin_token}"})),
        ("POST", f"{hub}/api/users", dict(headers={"Authorization": f"token {stack.admin_token}"}, data=b"{no")),
        ("GET", f"{hub}/api/users/{name}", dict(headers=bad)),
        ("PATCH", f"{hub}/api/users/admin", dict(headers=auth, json={"admin": False})),
        ("GET", f"{hub}/no-such-page?token={token}", dict(cookies=who["session"].cookies)),
        ("POST", f"{hub}/login", dict(data={"username": name, "password": who["password"] + "x"})),
    ]
    secrets_ = known_secrets(stack, who)
    seen = set()
    for method, url, kw in cases:
        r = requests.request(method, url, timeout=30, allow_redirects=False, **kw)
        seen.add(r.status_code)
        assert r.status_code >= 400, (method, url, r.status_code, r.text[:300])
        assert_clean(r.text, secrets_, f"{method} {url.replace(token, '<token>')} -> {r.status_code}")
    assert {400, 403, 404, 405, 500} <= seen, seen  # the forced error did reach the 500 path


def test_no_log_of_the_stack_holds_a_secret(stack, who):
    # Put secrets where a careless log line would catch them: a token in a URL (refused
    # or not, the request line is logged), a password on the login form, a token in a header.
    token = who["token"]
    for url in (f"{stack.url}/services/lens/api/me?token={token}",
                f"{stack.url}/user/{who['name']}/lens/api/status?token={token}",
                f"{stack.url}/hub/api/user?token={token}"):
        assert requests.get(url, timeout=30).status_code < 500, url
    stack.login_session(who["name"], who["password"])
    bad = requests.post(f"{stack.url}/hub/login", data={"username": who["name"], "password": who["password"][::-1]},
                        allow_redirects=False, timeout=30)
    assert bad.status_code in (403, 200, 302, 401)
    secrets_ = known_secrets(stack, who)
    secrets_["reversed password"] = who["password"][::-1]
    logs = [p for p in stack.state.rglob("*") if p.is_file() and is_log(p, stack.state)]
    assert stack.log_path in logs and stack.log_path.stat().st_size > 1000
    assert "/services/lens/api/me" in stack.log_path.read_text(errors="replace")  # the requests were logged
    assert any(label.startswith("cookie jupyterhub-hub-login") for label in secrets_), list(secrets_)
    leaks = []
    for path in logs:
        text = path.read_text(errors="replace")
        leaks += [f"{path.relative_to(stack.state)} holds the {label}" for label, value in secrets_.items()
                  if value in text]
    assert leaks == []


def is_log(path: Path, state: Path) -> bool:
    rel = path.relative_to(state)
    if rel.parts[0] in ("secrets", "homes"):
        return False  # the secrets themselves; users' own files
    return path.suffix in (".log", ".out", ".err") or "log" in path.name or any("log" in p for p in rel.parts[:-1])
