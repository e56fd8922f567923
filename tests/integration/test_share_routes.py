"""The lens service's sharing routes (``api/shares/OWNER[/SERVER]``) on a real hub: who may
call them, and bad input. The happy path (a running server shared, opened, revoked) is
tests/browser/test_sharing.py; here no server is started."""

from __future__ import annotations

import subprocess

import requests

OWNER, OTHER, GROUP = "share-owner", "share-other", "share-lab"


def call(stack, method: str, rel: str, token: str | None, **kwargs) -> requests.Response:
    headers = {**kwargs.pop("headers", {}), **({"Authorization": f"token {token}"} if token else {})}
    return requests.request(method, f"{stack.url}/services/lens/api/{rel}", headers=headers, timeout=30, **kwargs)


def message(r: requests.Response) -> str:
    assert r.headers.get("Content-Type", "").startswith("application/json"), (r.status_code, r.text[:300])
    return r.json()["message"]


def test_another_user_can_neither_list_nor_add_nor_revoke_someones_shares(stack):
    owner = stack.create_user(OWNER, groups=[GROUP])
    other = stack.create_user(OTHER)
    for rel in (f"shares/{OWNER}", f"shares/{OWNER}/", f"shares/{OWNER}/gpu"):
        for method, body in (("GET", None), ("POST", {"user": OTHER}), ("DELETE", {"user": OTHER}),
                             ("DELETE", {"all": True}), ("POST", {"group": GROUP})):
            r = call(stack, method, rel, other, json=body)
            assert r.status_code == 403, (method, rel, r.status_code, r.text)
            assert message(r).startswith(f"Only {OWNER}, whose server it is"), r.text
    # the owner's own calls are answered (this user has no server: the hub's 404, as JSON)
    r = call(stack, "GET", f"shares/{OWNER}", owner)
    assert r.status_code in (200, 404), r.text
    # with no token, or a made-up one: refused before anything is looked at
    for token in (None, "not-a-token", "x" * 5000):
        r = call(stack, "POST", f"shares/{OWNER}", token, json={"user": OTHER})
        assert r.status_code in (401, 403), (token and token[:10], r.status_code, r.text[:200])
    # and nothing was shared by those attempts (read as the admin)
    r = call(stack, "GET", f"shares/{OWNER}", stack.admin_token)
    if r.status_code == 200:
        assert r.json()["shares"] == [], r.text
    # names from the URL are data, never a format string, never someone else
    for rel in ("shares/%25s", f"shares/{OWNER}%2F..", f"shares/{OWNER.upper()}", "shares/" + "o" * 300):
        r = call(stack, "GET", rel, other)
        assert r.status_code == 403, (rel, r.status_code, r.text)
    assert message(call(stack, "GET", "shares/%25s", other)).startswith("Only %s, whose server it is")


def test_bad_bodies_are_400_with_a_json_message(stack):
    owner = stack.create_user(OWNER, groups=[GROUP])
    rel = f"shares/{OWNER}"
    raw = {"not json": b"{user: bob", "a list": b'["bob"]', "a string": b'"bob"', "deep": b"[" * 100_000}
    for what, data in raw.items():
        for method in ("POST", "DELETE"):
            r = call(stack, method, rel, owner, data=data, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (what, method, r.status_code, r.text[:200])
            assert "JSON" in message(r), r.text
    bodies = [{}, {"user": ""}, {"user": "   "}, {"user": 5}, {"user": ["bob"]}, {"user": None, "group": None},
              {"user": OTHER, "group": GROUP}, {"user": "x" * 256}, {"group": "lab\nFAKE LOG LINE"},
              {"user": "bob\x00"}]
    for body in bodies:
        for method in ("POST", "DELETE"):
            r = call(stack, method, rel, owner, json=body)
            assert r.status_code == 400, (method, body, r.status_code, r.text[:200])  # "   " was a 500
            assert "name" in message(r).lower(), r.text
    for body in ({"all": "yes"}, {"all": 1}, {"all": False}, {"all": True, "user": OTHER}):
        r = call(stack, "DELETE", rel, owner, json=body)
        assert r.status_code == 400 and '{"all": true} alone' in message(r), (body, r.text)
    # a well-formed share of a server the owner does not have: the hub's own 4xx, as JSON
    for body in ({"user": OTHER}, {"group": GROUP}, {"user": "no-such-user-xyz"}, {"user": "ünï cødé/.."}):
        r = call(stack, "POST", f"{rel}/no-such-server", owner, json=body)
        assert r.status_code in (400, 404), (body, r.status_code, r.text)
        assert "No such" in message(r), r.text
    r = call(stack, "POST", f"{rel}/" + "s" * 300, owner, json={"user": OTHER})
    assert r.status_code in (400, 404) and "No such" in message(r), r.text
    # a path no route matches (dot segments are resolved before the service sees them): a JSON 404
    for path in (f"shares/{OWNER}/..", "no-such-route", "shares/a/b/c"):
        r = call(stack, "GET", path, owner)
        assert r.status_code == 404 and message(r), (path, r.status_code, r.text[:200])
    # other methods: a JSON 405, not a traceback
    r = call(stack, "PUT", rel, owner, json={"user": OTHER})
    assert r.status_code == 405 and message(r), r.text
    # the shared-with-me list is the caller's own
    r = call(stack, "GET", "shares", owner)
    assert r.status_code == 200 and r.json() == {"servers": []}, r.text


def lens_share(stack, token: str, *args: str) -> subprocess.CompletedProcess:
    """`lens share ARGS` from outside any server: the token on stdin, the hub's URL."""
    env = {k: v for k, v in stack.env.items() if not k.startswith(("JUPYTERHUB_", "LENS_SERVICE_URL"))}
    return subprocess.run([stack.python, "-m", "jupyter_ext.cli.main", "share", "--hub-url", stack.url,
                           "--token-stdin", *args], input=token + "\n", capture_output=True, text=True,
                          env=env, timeout=60)


def test_the_share_cli_says_why_in_one_line(stack):
    owner = stack.create_user(OWNER, groups=[GROUP])
    other = stack.create_user(OTHER)
    cases = [
        (other, ["add", "--owner", OWNER, "--user", OTHER], f"Only {OWNER}, whose server it is"),
        (other, ["revoke", "--owner", OWNER, "--all"], f"Only {OWNER}, whose server it is"),
        (other, ["list", "--owner", OWNER], f"Only {OWNER}, whose server it is"),
        ("not-a-token", ["list"], "the hub refused the token"),
        ("not-a-token", ["with-me"], "the hub refused the token"),
        (owner, ["add", "--server", "no-such-server", "--user", OTHER], f"No such server: {OWNER}/no-such-server"),
        (owner, ["add", "--user", " "], "--user: give a name"),
        (owner, ["add", "--group", "lab\nx"], "control characters"),
    ]
    for token, args, says in cases:
        out = lens_share(stack, token, *args)
        assert out.returncode == 2 and says in out.stderr, (args, out.returncode, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    out = lens_share(stack, owner, "with-me")
    assert out.returncode == 0 and "no server is shared with you" in out.stdout, out.stderr
