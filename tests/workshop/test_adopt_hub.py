"""Finding 5 against the real stack: `lens workshop create` takes nothing over.

A hub group that already has a member who is not a seat, and an existing
account named as a seat: create refuses both, naming them, and changes nothing;
`--adopt` takes them in, but the existing account keeps its password and the
instructor reaches no account that is not a seat; close keeps adopted accounts.
"""

from __future__ import annotations

import pytest
import requests

from jupyter_ext.accounts import AccountStore
from jupyter_ext.hub.state import StateDir
from jupyter_ext.workshop.store import WorkshopStore
from tests.workshop.conftest import lens, restart, sheet, try_login

pytestmark = pytest.mark.integration

OWN_PASSWORD = "chem-two-own-password-7"  # the existing account's, set before the workshop


def accounts(stack) -> AccountStore:
    return AccountStore.from_url(StateDir(stack.state).lens_db_url)


def members(stack, group) -> list[str]:
    return sorted(stack.api("GET", f"/groups/{group}").json()["users"])


@pytest.fixture(scope="module")
def taken(wstack):
    """Group `chem` with a member `outsider` who will not be a seat, and `chem-02`,
    a regular account (with a hub user) that `--seats 2` will name."""
    wstack.create_user("outsider", groups=["chem"])
    wstack.add_account("chem-02", OWN_PASSWORD)
    wstack.create_user("chem-02")
    # a hub user with no lens account, named by a roster
    wstack.create_user("hubonly")
    return wstack


CREATE = ("create", "chem", "--seats", "2", "--expires", "+1d", "--profiles", "lab", "--instructors", "teachc")


def test_existing_group_and_users_are_refused_naming_them_and_nothing_changes(taken, tmp_path):
    r = lens(taken, *CREATE, check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "nothing was created" in r.stderr
    assert "'chem-02' already belongs to a regular account" in r.stderr
    # once the regular account is out of the way, the hub group and the hub user are named
    roster = tmp_path / "roster.csv"
    roster.write_text("username\nchem-01\nhubonly\n")
    r = lens(taken, "create", "chem", "--roster", str(roster), "--expires", "+1d", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "hub group 'chem' already exists, with member(s) outsider" in r.stderr
    assert "hub user(s) already exist: hubonly" in r.stderr
    assert "--adopt" in r.stderr
    # a user alone (no group) is refused too
    roster.write_text("username\nhubonly\n")
    r = lens(taken, "create", "phys", "--roster", str(roster), "--expires", "+1d", check=False)
    assert r.returncode == 2 and "hub user(s) already exist: hubonly" in r.stderr
    assert "hub group" not in r.stderr
    # nothing changed: no workshop, no account, no hub user, same group, no sheet
    store = WorkshopStore.from_url(StateDir(taken.state).lens_db_url)
    assert store.get("chem") is None and store.get("phys") is None
    assert members(taken, "chem") == ["outsider"]
    assert taken.api("GET", "/groups/phys").status_code == 404
    for name in ("chem-01", "teachc"):
        assert accounts(taken).get(name) is None
        assert taken.api("GET", f"/users/{name}").status_code == 404
    assert accounts(taken).get("hubonly") is None
    assert not (taken.state / "workshops" / "chem").exists()
    assert try_login(taken, "chem-02", OWN_PASSWORD).status_code == 302
    # even with --adopt, a per-seat budget is refused on a group with members who are not seats:
    # they would spend (and be held to) the group budget the workshop sets
    r = lens(taken, *CREATE, "--adopt", "--budget-per-seat", "5", check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--budget-per-seat" in r.stderr and "outsider" in r.stderr
    assert store.get("chem") is None and members(taken, "chem") == ["outsider"]


def test_adopt_keeps_passwords_and_the_instructor_reaches_only_seats(taken):
    r = lens(taken, *CREATE, "--adopt")
    assert "hub group:     adopted" in r.stdout
    assert "not seats:     outsider" in r.stdout
    assert "adopted:       chem-02 (existing accounts: password unchanged" in r.stdout
    assert "1 created, 0 unchanged" in r.stdout
    creds = sheet(taken, "chem")
    assert creds["chem-02"] == "(existing account: password unchanged)"
    assert creds["chem-01"] and not creds["chem-01"].startswith("(")
    html = (taken.state / "workshops" / "chem" / "credentials.html").read_text()
    assert "Your existing account: sign in with your own password." in html
    # the existing account: same password, not tagged, no expiry
    acct = accounts(taken).get("chem-02")
    assert acct.workshop is None and acct.expires_at is None and not acct.disabled
    assert try_login(taken, "chem-02", OWN_PASSWORD).status_code == 302
    assert members(taken, "chem") == ["chem-01", "chem-02", "outsider"]
    # a re-run changes nothing and needs no --adopt: the group and seats are the workshop's now
    r = lens(taken, *CREATE)
    assert "0 created, 1 unchanged" in r.stdout and "adopted:       chem-02" in r.stdout
    assert sheet(taken, "chem") == creds

    restart(taken)  # roles are loaded at hub start
    t = taken.create_user("teachc")
    # the role, as the hub resolved it: every scope names a seat, none the group or the outsider
    scopes = taken.api("GET", "/user", token=t).json()["scopes"]
    assert any(s == "access:servers!user=chem-01" for s in scopes), scopes
    assert not [s for s in scopes if "outsider" in s or "!group=chem" in s], scopes
    # hub API: seats yes, the group's other member no
    assert {u["name"] for u in taken.api("GET", "/users", token=t).json()} == {"chem-01", "chem-02"}
    assert taken.api("GET", "/users/chem-01", token=t).status_code == 200
    assert taken.api("GET", "/users/outsider", token=t).status_code == 404
    assert taken.api("GET", "/groups/chem", token=t).status_code in (403, 404)  # would name the outsider
    # the outsider's running server: the instructor can neither open nor stop it
    assert taken.spawn("outsider", "lab").status_code in (201, 202)  # the outsider is not held to `lab` ...
    r = requests.get(f"{taken.url}/user/outsider/api/status", headers={"Authorization": f"token {t}"},
                     allow_redirects=False, timeout=20)
    assert r.status_code in (302, 403), r.status_code
    assert taken.api("DELETE", "/users/outsider/server", token=t).status_code in (403, 404)
    assert taken.api("POST", "/users/outsider/server", token=t, json={"profile": "lab"}).status_code in (403, 404)
    assert taken.api("GET", "/users/outsider").json()["servers"][""]["ready"]
    taken.stop_server("outsider")


def test_close_keeps_adopted_accounts_and_only_takes_them_out(taken):
    pw = sheet(taken, "chem")["chem-01"]
    r = lens(taken, "close", "chem")
    assert "1 account(s) disabled" in r.stdout
    assert "adopted account(s) kept as they were, removed from the workshop: chem-02" in r.stdout
    # the workshop's own seat is closed; the adopted account is as it was
    assert try_login(taken, "chem-01", pw).status_code == 403
    acct = accounts(taken).get("chem-02")
    assert not acct.disabled and acct.expires_at is None
    assert try_login(taken, "chem-02", OWN_PASSWORD).status_code == 302
    assert taken.api("GET", "/users/chem-02").status_code == 200
    # out of the group lens put it in; the group's own member stays
    assert members(taken, "chem") == ["chem-01", "outsider"]
    # the closed workshop binds neither of them: both may still start a server
    token = taken.login_token("chem-02", OWN_PASSWORD)
    assert taken.spawn("chem-02", "lab", token=token).status_code in (201, 202)
    taken.stop_server("chem-02")
