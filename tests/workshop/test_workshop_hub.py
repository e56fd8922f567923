"""`lens workshop` against the real local stack: accounts, group, sheet,
idempotence, profile restriction, instructors, expiry, close."""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests

from jupyter_ext.accounts import AccountStore
from jupyter_ext.hub.state import StateDir
from tests.workshop.conftest import lens, restart, sheet, try_login

pytestmark = pytest.mark.integration


def accounts(stack) -> AccountStore:
    return AccountStore.from_url(StateDir(stack.state).lens_db_url)


def test_bad_roster_is_rejected_line_by_line_before_anything(wstack, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("username,display_name\nann,Ann\nBob!,Bob\nann,Ann again\n\ncarl,Carl\n9lives,Cat\n")
    r = lens(wstack, "create", "badws", "--roster", str(roster), "--expires", "+1d", check=False)
    assert r.returncode == 2
    assert f"{roster}:3: invalid username 'Bob!'" in r.stderr
    assert f"{roster}:4: duplicate username 'ann' (first on line 2)" in r.stderr
    assert f"{roster}:7: invalid username '9lives'" in r.stderr
    assert "nothing was created" in r.stderr
    assert wstack.api("GET", "/groups/badws").status_code == 404
    assert accounts(wstack).get("ann") is None and accounts(wstack).get("carl") is None
    # bad options name the field and the allowed values
    r = lens(wstack, "create", "badws", "--seats", "2", "--expires", "+1d", "--profiles", "lab,nope", check=False)
    assert r.returncode == 2 and "--profiles: unknown profile(s) nope; allowed: lab, rstudio, vscode, gpu" in r.stderr


def test_create_is_complete_and_idempotent(wstack):
    args = ("create", "ws1", "--seats", "3", "--expires", "+1d", "--profiles", "lab",
            "--budget-per-seat", "5", "--instructors", "teach1")
    r = lens(wstack, *args)
    assert "3 created, 0 unchanged" in r.stdout and "$5.00 per seat" in r.stdout
    assert "ledger budget $5.00 for each seat (user:SEAT), group:ws1 = $15.00 for the class, until" in r.stdout
    assert "restart the hub to activate the instructor role 'workshop-ws1-instructors'" in r.stdout
    group = wstack.api("GET", "/groups/ws1").json()
    assert sorted(group["users"]) == ["ws1-01", "ws1-02", "ws1-03"]
    first = sheet(wstack, "ws1")
    assert set(first) == {"ws1-01", "ws1-02", "ws1-03", "teach1"}
    store = accounts(wstack)
    for seat in ("ws1-01", "ws1-02", "ws1-03"):
        acct = store.get(seat)
        assert acct.workshop == "ws1" and acct.expires_at is not None
        assert store.check(seat, first[seat])[0] is not None
    # stored hashed: the clear password is nowhere in the database file
    db = (wstack.state / "lens.sqlite").read_bytes()
    assert first["ws1-01"].encode() not in db
    for f in ("credentials.csv", "credentials.html"):
        mode = stat.S_IMODE(os.stat(wstack.state / "workshops" / "ws1" / f).st_mode)
        assert mode == 0o600
    html = (wstack.state / "workshops" / "ws1" / "credentials.html").read_text()
    assert html.count('class="card"') == 4 and first["ws1-02"] in html
    # again: nothing new, passwords unchanged
    r = lens(wstack, *args)
    assert "0 created, 3 unchanged" in r.stdout and "hub group:     exists" in r.stdout
    assert sheet(wstack, "ws1") == first
    assert sorted(wstack.api("GET", "/groups/ws1").json()["users"]) == ["ws1-01", "ws1-02", "ws1-03"]
    assert store.check("ws1-01", first["ws1-01"])[0] is not None
    # seat names that belong to someone else are refused before anything changes
    wstack.add_account("ws2-01", "someone-elses-1")
    r = lens(wstack, "create", "ws2", "--seats", "2", "--expires", "+1d", check=False)
    assert r.returncode == 2 and "'ws2-01' already belongs to a regular account" in r.stderr
    assert wstack.api("GET", "/groups/ws2").status_code == 404


def test_each_seat_has_its_own_budget(wstack):
    """--budget-per-seat: each seat its own budget, the group's the class's cap. One seat
    that spent its share is refused; another still starts, and its form shows its own."""
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    lens(wstack, "create", "wsb", "--seats", "2", "--expires", "+1d", "--profiles", "lab",
         "--budget-per-seat", "0.50")
    passwords = sheet(wstack, "wsb")
    engine = make_engine(StateDir(wstack.state).lens_db_url)
    try:
        ledger = Ledger(engine)
        assert ledger.get_budget("user:wsb-01").amount_micro == 500_000
        assert ledger.get_budget("group:wsb").amount_micro == 1_000_000
        ledger.record(["user:wsb-01", "group:wsb"], 500_000, "jobs", "wsb-01-spent-it-all")
    finally:
        engine.dispose()
    spent = wstack.login_session("wsb-01", passwords["wsb-01"])
    fresh = wstack.login_session("wsb-02", passwords["wsb-02"])
    assert "Budget left this period: $0.50" in fresh.get(f"{wstack.url}/hub/spawn", timeout=30).text
    assert "Budget left this period: $0.00" in spent.get(f"{wstack.url}/hub/spawn", timeout=30).text
    r = spent.post(f"{wstack.url}/hub/spawn", data={"profile": "lab", "_xsrf": spent.cookies.get("_xsrf", "")},
                   allow_redirects=False, timeout=60)
    assert r.status_code == 403 and "budget" in r.text.lower(), r.status_code
    assert not wstack.api("GET", "/users/wsb-01").json()["servers"]
    assert wstack.spawn("wsb-02", "lab").status_code in (201, 202)
    wstack.stop_server("wsb-02")


def test_students_see_and_start_only_workshop_profiles(wstack):
    pw = sheet(wstack, "ws1")["ws1-01"]
    s = wstack.login_session("ws1-01", pw)
    form = s.get(f"{wstack.url}/hub/spawn", timeout=30)
    assert 'data-profile="lab"' in form.text
    assert 'data-profile="vscode"' not in form.text and 'data-profile="rstudio"' not in form.text
    # a forged form naming another profile
    r = s.post(f"{wstack.url}/hub/spawn", data={"profile": "vscode", "_xsrf": s.cookies.get("_xsrf", "")},
               allow_redirects=False, timeout=30)
    assert r.status_code == 403, r.status_code
    assert "not part of your workshop" in r.text
    # a forged REST call with the student's own token
    token = s.post(f"{wstack.url}/hub/api/users/ws1-01/tokens", json={"expires_in": 600},
                   headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=30).json()["token"]
    r = wstack.api("POST", "/users/ws1-01/server", token=token, json={"profile": "vscode"})
    assert r.status_code == 403 and "allowed: lab" in r.json()["message"]
    assert not wstack.api("GET", "/users/ws1-01").json()["servers"]
    # the allowed profile starts
    r = wstack.spawn("ws1-01", "lab", token=token)
    assert r.status_code in (201, 202), r.text
    wstack.stop_server("ws1-01")


def test_instructors_see_and_stop_only_their_group(wstack):
    lens(wstack, "create", "ws3", "--seats", "2", "--expires", "+1d", "--instructors", "teach3")
    restart(wstack)  # roles are loaded at hub start
    r = lens(wstack, "create", "ws1", "--seats", "3", "--expires", "+1d", "--profiles", "lab",
             "--budget-per-seat", "5", "--instructors", "teach1")
    assert "restart the hub" not in r.stdout  # the role is active now
    t1 = wstack.create_user("teach1")  # admin-made token for the existing instructor user
    t3 = wstack.create_user("teach3")
    student = wstack.create_user("ws3-01")
    # see: only their own seats
    names = {u["name"] for u in wstack.api("GET", "/users", token=t1).json()}
    assert names == {"ws1-01", "ws1-02", "ws1-03"}
    assert wstack.api("GET", "/users/ws1-02", token=t1).status_code == 200
    assert wstack.api("GET", "/users/ws3-01", token=t1).status_code == 404
    assert wstack.api("GET", "/users/admin", token=t1).status_code == 404
    # no read:groups at all (a group's member list may name accounts that are not seats)
    assert wstack.api("GET", "/groups/ws3", token=t1).status_code in (403, 404)
    assert wstack.api("GET", "/groups/ws1", token=t1).status_code in (403, 404)
    # start and stop a student's server; reach it
    assert wstack.spawn("ws1-02", "lab", token=t1).status_code in (201, 202)
    r = requests.get(f"{wstack.url}/user/ws1-02/api/status", headers={"Authorization": f"token {t1}"}, timeout=20)
    assert r.status_code == 200
    # activity is visible
    model = wstack.api("GET", "/users/ws1-02", token=t1).json()
    assert model["servers"][""]["ready"] and model["last_activity"]
    # touch another group: refused
    assert wstack.spawn("ws3-01", "lab", token=student).status_code in (201, 202)
    assert wstack.api("DELETE", "/users/ws3-01/server", token=t1).status_code in (403, 404)
    r = requests.get(f"{wstack.url}/user/ws3-01/api/status", headers={"Authorization": f"token {t1}"},
                     allow_redirects=False, timeout=20)
    assert r.status_code in (302, 403)
    assert wstack.api("POST", "/users/ws3-02/server", token=t1, json={"profile": "lab"}).status_code in (403, 404)
    # costs per seat: instructors of this workshop only
    svc = f"{wstack.url}/services/lens/api/workshops"
    r = requests.get(f"{svc}/ws1/seats", headers={"Authorization": f"token {t1}"}, timeout=20)
    assert r.status_code == 200, r.text
    seats = {s["username"]: s for s in r.json()["seats"]}
    assert set(seats) == {"ws1-01", "ws1-02", "ws1-03"}
    assert seats["ws1-01"]["cost_micro_usd"] > 0  # ran lab in the previous test
    assert seats["ws1-02"]["server"][""]["ready"]
    for token in (t1, student):
        r = requests.get(f"{svc}/ws3/seats", headers={"Authorization": f"token {token}"}, timeout=20)
        assert r.status_code == 403
    assert requests.get(f"{svc}/ws3/seats", headers={"Authorization": f"token {t3}"}, timeout=20).status_code == 200
    # the instructor stops their student's server
    assert wstack.api("DELETE", "/users/ws1-02/server", token=t1).status_code in (202, 204)
    wstack.stop_server("ws3-01")


def test_expiry_refuses_logins_and_stops_servers(wstack):
    lens(wstack, "create", "shortws", "--seats", "1", "--expires", "+30s")
    pw = sheet(wstack, "shortws")["shortws-01"]
    s = wstack.login_session("shortws-01", pw)
    token = s.post(f"{wstack.url}/hub/api/users/shortws-01/tokens", json={"expires_in": 600},
                   headers={"X-XSRFToken": s.cookies.get("_xsrf", "")}, timeout=30).json()["token"]
    assert wstack.spawn("shortws-01", "lab", token=token).status_code in (201, 202)
    import json
    from datetime import datetime

    seat = json.loads(lens(wstack, "export", "shortws").stdout)["seats"][0]
    expires = datetime.fromisoformat(seat["expires_at"])
    deadline = time.monotonic() + 90
    stopped_at = None
    while time.monotonic() < deadline:
        if not wstack.api("GET", "/users/shortws-01").json()["servers"]:
            stopped_at = time.monotonic()
            break
        time.sleep(1)
    assert stopped_at is not None, "the expiry task did not stop the server"
    from jupyter_ext.workshop.model import utcnow

    assert utcnow() >= expires  # not stopped early
    r = try_login(wstack, "shortws-01", pw)
    assert r.status_code == 403
    assert f"This account expired on {expires:%Y-%m-%d %H:%M} UTC." in r.text
    # and a spawn with a still-valid token is refused too
    r = wstack.api("POST", "/users/shortws-01/server", token=token, json={"profile": "lab"})
    assert r.status_code == 403 and "ended on" in r.json()["message"]
    # extend brings it back
    r = lens(wstack, "extend", "shortws", "--expires", "+1d")
    assert "now expire" in r.stdout
    assert try_login(wstack, "shortws-01", pw).status_code == 302


def test_list_export_and_close(wstack, tmp_path):
    r = lens(wstack, "list")
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert {"ws1", "ws3", "shortws"} <= set(lines)
    assert "open" in lines["ws1"] and "$5.00" in lines["ws1"]
    pw = sheet(wstack, "ws1")["ws1-03"]
    token = wstack.create_user("ws1-03")
    assert wstack.spawn("ws1-03", "lab", token=token).status_code in (201, 202)
    r = lens(wstack, "close", "ws1", "--archive")
    assert "3 account(s) disabled, 1 server(s) stopped" in r.stdout
    assert "ws1-01" in r.stdout and "total" in r.stdout
    assert not wstack.api("GET", "/users/ws1-03").json()["servers"]
    archive = wstack.state / "workshops" / "ws1" / "archive"
    try:
        from jupyter_ext.archive.engine import ArchiveEngine
        from jupyter_ext.archive.repository import Principal
    except ImportError:  # before the archive engine: one tar.zst per seat
        assert (archive / "ws1-03.tar.zst").exists()
    else:
        engine = ArchiveEngine(repository=str(archive / "repository"), cache_dir="")
        listed = engine.list(owner="user:ws1-03", principal=Principal(user="lens-admin", admin=True))
        assert len(listed) == 1, listed
    r = try_login(wstack, "ws1-03", pw)
    assert r.status_code == 403 and "This account has been disabled." in r.text
    r = wstack.api("POST", "/users/ws1-03/server", token=token, json={"profile": "lab"})
    assert r.status_code == 403  # token revoked, or the workshop refusal
    out = tmp_path / "ws1.json"
    lens(wstack, "export", "ws1", "-o", str(out))
    import json

    data = json.loads(out.read_text())
    assert data["state"] == "closed" and data["budget_per_seat_micro_usd"] == 5_000_000
    assert [s["username"] for s in data["seats"]] == ["ws1-01", "ws1-02", "ws1-03"]
    assert all(s["disabled"] for s in data["seats"])
    assert data["total_cost_micro_usd"] == sum(s["cost_micro_usd"] for s in data["seats"]) > 0
    assert "password" not in out.read_text()


def test_prewarm_starts_the_seats_before_the_class(wstack):
    """`lens workshop prewarm`: every seat's server runs before the class, held from the
    culler and from its own idle shutdown until the start plus the grace period; a
    student who logs in lands on the running server."""
    from jupyter_ext.workshop.prewarm import held, holds_path

    lens(wstack, "create", "wsw", "--seats", "2", "--expires", "+1d", "--profiles", "lab")
    passwords = sheet(wstack, "wsw")
    try:
        r = lens(wstack, "prewarm", "wsw", "--starts", "+2h", "--grace", "15")
        assert "2 of 2 running" in r.stdout, r.stdout
        for seat in ("wsw-01", "wsw-02"):
            server = wstack.api("GET", f"/users/{seat}").json()["servers"][""]
            assert server["ready"] and server["user_options"]["profile"] == "lab"
            assert 2 * 3600 < held(seat, wstack.state) <= 2 * 3600 + 15 * 60
        assert stat.S_IMODE(os.stat(holds_path(wstack.state)).st_mode) == 0o600
        pid = wstack.api("GET", "/users/wsw-01?include_stopped_servers").json()["servers"][""]["state"]["pid"]
        cmdline = open(f"/proc/{pid}/cmdline").read().split("\0")
        idle = next(int(a.split("=")[1]) for a in cmdline if a.startswith("--ServerApp.shutdown_no_activity_timeout="))
        assert idle > 3600 + 2 * 3600  # the profile's idle timeout plus the hold
        # the student logs in and lands on the running server's lab, with no start
        s = wstack.login_session("wsw-02", passwords["wsw-02"])
        t0 = time.monotonic()
        page = s.get(f"{wstack.url}/hub/spawn", timeout=60)
        assert page.status_code == 200 and page.url.endswith("/user/wsw-02/lab"), page.url
        assert time.monotonic() - t0 < 30
        # again: nothing to start
        r = lens(wstack, "prewarm", "wsw")
        assert "2 of 2 running" in r.stdout
        r = lens(wstack, "prewarm", "nope", check=False)
        assert r.returncode != 0 and "no workshop 'nope'" in r.stderr
    finally:
        lens(wstack, "close", "wsw")


def test_an_instructor_shares_their_server_with_the_seats(wstack):
    """`lens workshop share NAME --from INSTRUCTOR`: every seat reaches the instructor's
    server (JupyterHub sharing with the workshop's group), nobody else does, and
    `--revoke` takes it back within seconds."""
    lens(wstack, "create", "wsh", "--seats", "2", "--expires", "+1d", "--instructors", "teachsh")
    teacher = wstack.create_user("teachsh")
    seat = wstack.create_user("wsh-01")
    outsider = wstack.create_user("notaseat")
    try:
        assert wstack.spawn("teachsh", "lab", token=teacher).status_code in (201, 202)
        status = f"{wstack.url}/user/teachsh/api/status"

        def seat_status(token):
            return requests.get(status, headers={"Authorization": f"token {token}"}, allow_redirects=False,
                                timeout=20).status_code

        assert seat_status(seat) == 403
        r = lens(wstack, "share", "wsh", "--from", "wsh-02", check=False)
        assert r.returncode == 2 and "'wsh-02' is not an instructor of workshop 'wsh'" in r.stderr, r.stderr
        r = lens(wstack, "share", "nope", "--from", "teachsh", check=False)
        assert r.returncode == 2 and "no workshop 'nope'" in r.stderr
        r = lens(wstack, "share", "wsh", "--from", "teachsh")
        assert "2 seat(s) may open /user/teachsh/" in r.stdout, r.stdout
        deadline = time.monotonic() + 20  # the server remembers the seat's earlier 403 for up to 5 s
        while (code := seat_status(seat)) != 200:
            assert time.monotonic() < deadline, f"the seat does not reach the shared server ({code})"
            time.sleep(0.25)
        assert seat_status(outsider) == 403
        lens(wstack, "share", "wsh", "--from", "teachsh", "--revoke")
        deadline = time.monotonic() + 20  # servers trust the hub's answer 5 s
        while seat_status(seat) != 403:
            assert time.monotonic() < deadline, "the seat still reaches the instructor's server"
            time.sleep(0.25)
    finally:
        wstack.stop_server("teachsh")
        lens(wstack, "close", "wsh")


def test_a_token_the_hub_refuses_is_said_so_not_a_traceback(wstack):
    """prewarm and share with a made-up token (on stdin): the hub's refusal, exit status 2."""
    import subprocess
    import sys

    from tests.workshop.conftest import LENS_MAIN

    lens(wstack, "create", "wst", "--seats", "1", "--expires", "+1d", "--instructors", "teachst")
    try:
        env = {k: v for k, v in wstack.env.items() if k != "LENS_ADMIN_TOKEN"}
        for args in (["prewarm", "wst", "--starts", "+1h"], ["share", "wst", "--from", "teachst"]):
            argv = [sys.executable, "-c", LENS_MAIN, "workshop", "--state", str(wstack.state), "--hub-url",
                    wstack.url, "--token-stdin", *args]
            r = subprocess.run(argv, input="not-a-token\n", capture_output=True, text=True, env=env, timeout=120)
            assert r.returncode == 2 and "the hub refused" in r.stderr, (args, r.returncode, r.stderr)
            assert "Traceback" not in r.stderr, r.stderr
        from jupyter_ext.workshop.prewarm import read_holds

        assert "wst-01" not in read_holds(wstack.state)  # refused before any seat was held
    finally:
        lens(wstack, "close", "wst")
