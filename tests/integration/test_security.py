"""Security hardening through the real stack: private state (§1), login throttling (§2)."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time

import pytest
import requests

pytestmark = pytest.mark.integration

PROBE = r"""
import json, os, sys
opened, listed = [], []
for path in json.load(open(sys.argv[1])):
    try:
        if os.path.isdir(path):
            os.listdir(path)
            listed.append(path)
        else:
            open(path, "rb").close()
            opened.append(path)
    except OSError:
        pass
print(json.dumps({"opened": opened, "listed": listed}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs the hub as root, with a unix account per user")
def test_a_user_account_opens_nothing_in_the_state_directory_but_its_own(stack):
    stack.create_user("peek")
    stack.spawn("peek", "lab")
    try:
        stack.add_account("peek2", "peek2-password-1")  # lens.sqlite is written
        user = pwd.getpwnam("jupyter-peek")
        everything = []
        for dirpath, _dirs, filenames in os.walk(stack.state):
            everything.append(dirpath)
            everything += [os.path.join(dirpath, n) for n in filenames]
        names = {os.path.relpath(p, stack.state) for p in everything}
        for must in ("lens.sqlite", "jupyterhub.sqlite", "secrets/lens-admin.token", "secrets/jupyterhub_cookie_secret",
                     "stack.log", "scratch/peek"):
            assert must in names, sorted(names)
        listing = stack.state.parent / "paths.json"  # the stack's root is traversable (0711)
        listing.write_text(json.dumps(everything))
        os.chmod(listing, 0o644)
        r = subprocess.run(["runuser", "-u", "jupyter-peek", "--", sys.executable, "-c", PROBE, str(listing)],
                           capture_output=True, text=True, cwd="/", timeout=60)
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        # the user reaches only what is its own (its scratch folder), nothing of the hub's
        not_its_own = [p for p in result["opened"] + result["listed"] if os.stat(p).st_uid != user.pw_uid]
        assert not_its_own == []
        assert str(stack.state / "scratch" / "peek") in result["listed"]  # meant for it: reachable
    finally:
        stack.stop_server("peek")


def _login(stack, name, password):
    s = requests.Session()
    s.get(f"{stack.url}/hub/login", timeout=10)
    return s.post(f"{stack.url}/hub/login", data={"username": name, "password": password,
                                                  "_xsrf": s.cookies.get("_xsrf", "")},
                  allow_redirects=False, timeout=30)


def test_failed_logins_are_throttled_through_the_login_form(stack):
    stack.add_account("hammer", "hammer-password-1")
    took = []
    for _ in range(5):
        t0 = time.monotonic()
        r = _login(stack, "hammer", "not-the-password")
        took.append(time.monotonic() - t0)
        assert r.status_code == 403 and "Invalid username or password" in r.text
    r = _login(stack, "hammer", "hammer-password-1")  # even the right password, for a while
    assert r.status_code == 429, (took, r.status_code)
    assert "Too many failed logins: try again in" in r.text
    wait = int(r.text.split("try again in ", 1)[1].split(" s", 1)[0])
    assert 1 <= wait <= 5  # the first window: throttle_base_seconds
    time.sleep(wait + 0.2)
    r = _login(stack, "hammer", "hammer-password-1")
    assert r.status_code == 302
