"""Usernames: no two hub names map to the same unix account (case, Unicode
confusables), and no hub name maps onto a system account."""

from __future__ import annotations

import os
import pwd
import subprocess
import unicodedata

import pytest

from tests.support import unix

pytestmark = pytest.mark.integration

SYSTEM_PROBE = "secsys"  # hub name whose mapped unix name we make a system account
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs the hub as root, with a unix account per user")


def hub_names(stack) -> set[str]:
    r = stack.api("GET", "/users")
    assert r.status_code == 200, r.text
    return {u["name"] for u in r.json()}


# Each variant differs from "alice" only by case or by a Unicode confusable.
VARIANTS = [
    "ALICE", "Alice",
    "ａｌｉｃｅ",  # fullwidth: NFKC folds it to "alice"
    "alıce",  # dotless i
    "аlice",  # Cyrillic a
    "al\u0069\u0307ce",  # i + combining dot above
    "\u212aate",  # KELVIN SIGN, lower()s to "kate"
]


def test_the_variants_really_are_confusable():
    for name in VARIANTS:
        folded = unicodedata.normalize("NFKC", name).casefold()
        assert name != "alice" and name != "kate"
        assert folded in ("alice", "kate") or not folded.isascii()


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_second_hub_name_by_case_or_confusable(stack, variant):
    stack.create_user("alice")
    stack.create_user("kate")
    before = hub_names(stack)
    # the two REST ways of creating users, as an admin
    single = stack.api("POST", f"/users/{variant}")
    bulk = stack.api("POST", "/users", json={"usernames": [variant]})
    assert single.status_code in (400, 409), single.text
    assert bulk.status_code in (400, 409), bulk.text
    assert "Traceback" not in single.text + bulk.text
    assert hub_names(stack) == before  # nothing new: no look-alike of alice or kate exists


def test_the_login_form_never_makes_a_look_alike(stack):
    stack.add_account("carla", "carla-password-1")
    for variant in ("CARLA", "ｃａｒｌａ", "carlа"):  # last: Cyrillic a
        s = __import__("requests").Session()
        s.get(f"{stack.url}/hub/login", timeout=10)
        r = s.post(f"{stack.url}/hub/login", data={"username": variant, "password": "carla-password-1",
                                                   "_xsrf": s.cookies.get("_xsrf", "")},
                   allow_redirects=False, timeout=30)
        if r.status_code == 302:  # "CARLA" is carla herself (normalized), never a new user
            who = s.get(f"{stack.url}/hub/api/user", headers={"X-XSRFToken": s.cookies.get("_xsrf", "")},
                        timeout=10).json()["name"]
            assert who == "carla"
        else:
            assert r.status_code == 403
    assert not {n for n in hub_names(stack) if n != "carla" and unicodedata.normalize("NFKC", n).casefold()
                == "carla"}


@ROOT_ONLY
@pytest.mark.parametrize("name", ["nobody"])
def test_a_system_account_name_maps_to_its_own_unprivileged_account(stack, name):
    token = stack.create_user(name)
    r = stack.spawn(name, "lab")
    assert r.status_code in (201, 202), r.text
    try:
        system = pwd.getpwnam(name)
        mapped = pwd.getpwnam(f"jupyter-{name}")
        assert mapped.pw_uid != system.pw_uid and mapped.pw_uid >= 1000
        r = __import__("requests").get(f"{stack.url}/user/{name}/lens/api/status",
                                       headers={"Authorization": f"token {token}"}, timeout=20)
        assert r.status_code == 200
        pids = subprocess.run(["pgrep", "-u", str(system.pw_uid), "-f", "lens-singleuser"],
                              capture_output=True, text=True).stdout.split()
        assert pids == []  # nothing of the hub runs as the real system account
        assert subprocess.run(["pgrep", "-u", str(mapped.pw_uid), "-f", "lens-singleuser"],
                              capture_output=True).returncode == 0
    finally:
        stack.stop_server(name)


@ROOT_ONLY
def test_a_hub_name_that_maps_onto_an_existing_system_account_is_refused(stack):
    account = f"jupyter-{SYSTEM_PROBE}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", account],
                   check=True, capture_output=True)
    try:
        assert pwd.getpwnam(account).pw_uid < 1000
        stack.create_user(SYSTEM_PROBE)
        r = stack.api("POST", f"/users/{SYSTEM_PROBE}/server", json={"profile": "lab"})
        if r.status_code in (201, 202):  # refused while starting: the server never becomes ready
            with pytest.raises(RuntimeError):
                stack.wait_server(SYSTEM_PROBE, timeout=60)
        else:
            assert r.status_code == 403, r.text
            assert "system account" in r.json()["message"]
        assert "refused to adopt system account" in stack.tail(400)
        uid = pwd.getpwnam(account).pw_uid
        assert subprocess.run(["pgrep", "-u", str(uid)], capture_output=True).returncode == 1  # nothing runs as it
    finally:
        unix.remove_account(account)
