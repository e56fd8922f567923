"""Budgets enforced by the real stack: the spawn gate, %costs data, the admin view."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time

import pytest
import requests

pytestmark = pytest.mark.integration


def lens_cli(stack, *args: str) -> subprocess.CompletedProcess:
    # No LENS_DB_URL: the CLI finds the service's database from the state dir alone.
    env = {k: v for k, v in stack.env.items() if k not in ("LENS_DB_URL", "LENS_COSTS_DB_URL")}
    env["LENS_STATE_DIR"] = str(stack.state)
    return subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def service(stack, path: str, token: str, **kw) -> requests.Response:
    return requests.get(f"{stack.url}/services/lens/{path}", headers={"Authorization": f"token {token}"},
                        timeout=30, **kw)


def test_spawn_gate_refuses_what_does_not_fit_and_allows_what_does(stack):
    name = "frugal"
    stack.create_user(name, groups=["gpu-users"])
    r = lens_cli(stack, "budgets", "set", f"user:{name}", "0.50")
    assert r.returncode == 0, r.stderr
    r = stack.api("POST", f"/users/{name}/server", json={"profile": "gpu"})
    # gpu is unavailable here (no GPU); the budget gate is checked for lab below and via the route
    assert r.status_code == 400
    # the gate itself: an hour of the gpu rate does not fit $0.50, lab's does
    tok = stack.admin_token
    gpu = service(stack, f"api/budget/check?user={name}&category=servers&rate=1.006", tok).json()
    assert gpu["allowed"] is False and "budget" in gpu["message"].lower()
    lab = service(stack, f"api/budget/check?user={name}&category=servers&rate=0.096", tok).json()
    assert lab["allowed"] is True
    assert stack.spawn(name, "lab").status_code in (201, 202)
    stack.stop_server(name)


def test_exhausted_budget_blocks_spawn_with_a_clear_message(stack):
    name = "broke"
    stack.create_user(name)
    assert lens_cli(stack, "budgets", "set", f"user:{name}", "0.01").returncode == 0
    r = stack.api("POST", f"/users/{name}/server", json={"profile": "lab"})
    assert r.status_code == 403, r.text
    message = r.json()["message"]
    assert "budget" in message.lower() and "Traceback" not in r.text
    assert not stack.api("GET", f"/users/{name}").json()["servers"]
    # an admin override lets it through
    assert lens_cli(stack, "budgets", "override", f"user:{name}", "--by", "admin").returncode == 0
    assert stack.spawn(name, "lab").status_code in (201, 202)
    stack.stop_server(name)


def test_running_server_is_metered_into_the_users_costs(stack):
    name = "spender"
    token = stack.create_user(name)
    stack.spawn(name, "lab")
    time.sleep(2)
    stack.stop_server(name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        report = service(stack, "api/costs", token).json()
        if report["by_category"].get("servers", 0) > 0:
            break
        time.sleep(0.5)
    assert report["by_category"]["servers"] > 0
    assert report["account"] == f"user:{name}"


def test_costs_routes_deny_other_users(stack):
    alice = stack.create_user("c-alice", groups=["lab-a"])
    bob = stack.create_user("c-bob", groups=["lab-b"])
    assert service(stack, "api/costs", alice).status_code == 200
    assert service(stack, "api/costs?user=c-alice", bob).status_code == 403
    assert service(stack, "api/costs?group=lab-a", alice).status_code == 200
    assert service(stack, "api/costs?group=lab-a", bob).status_code == 403
    assert service(stack, "api/budget/check?user=c-alice", bob).status_code == 403
    assert service(stack, "api/costs", "").status_code in (401, 403)
    # the hub-only routes refuse a user's token, even for their own name
    for path, body in (("api/budget/hold", {"user": "c-bob", "ref": "x"}),
                       ("api/budget/release", {"hold_id": 1}),
                       ("api/meter/servers", {"user": "c-alice", "profile": "lab", "event": "stop"})):
        r = requests.post(f"{stack.url}/services/lens/{path}", json=body,
                          headers={"Authorization": f"token {bob}"}, timeout=10)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["message"], path
    for path in ("admin/costs", "admin/costs.csv?table=users", "metrics"):
        assert service(stack, path, alice).status_code == 403, path


def test_admin_sees_tables_plot_csv_and_metrics(stack):
    tok = stack.admin_token
    page = service(stack, "admin/costs", tok)
    assert page.status_code == 200 and "<svg" in page.text and "users" in page.text
    csv = service(stack, "admin/costs.csv?table=categories", tok)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    metrics = service(stack, "metrics", tok)
    assert metrics.status_code == 200 and "lens_" in metrics.text
    assert service(stack, "admin/costs.csv?table=bogus", tok).status_code == 400


def test_threshold_alerts_show_as_the_hub_banner_for_that_user_only(stack):
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    password = secrets.token_urlsafe(12)
    for name in ("b-alice", "b-bob"):
        stack.add_account(name, password)
    alice = stack.create_user("b-alice", groups=["lab-banner"])
    bob = stack.create_user("b-bob")
    assert lens_cli(stack, "budgets", "set", "user:b-alice", "10").returncode == 0
    assert lens_cli(stack, "budgets", "set", "group:lab-banner", "100").returncode == 0
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        Ledger(engine).record(["user:b-alice", "group:lab-banner"], 8_500_000, "jobs", "banner-test")
    finally:
        engine.dispose()
    # the service: alice sees her own alert, bob none and not alice's
    mine = service(stack, "api/budget/alerts", alice).json()["alerts"]
    assert [(a["account"], a["threshold"]) for a in mine] == [("user:b-alice", 80)]
    assert service(stack, "api/budget/alerts", bob).json()["alerts"] == []
    assert service(stack, "api/budget/alerts?user=b-alice", bob).status_code == 403
    assert service(stack, "api/budget/alerts", "").status_code in (401, 403)
    # the hub's pages: the banner refreshes in the background (10 s cache), so poll
    a_session = stack.login_session("b-alice", password)
    b_session = stack.login_session("b-bob", password)
    deadline = time.monotonic() + 40
    text = ""
    while time.monotonic() < deadline:
        text = a_session.get(f"{stack.url}/hub/home", timeout=30).text
        if "lens-budget-alert" in text:
            break
        time.sleep(1)
    assert "Your budget for" in text and "has passed 80%: $8.50 of $10.00 used" in text
    assert "lens-budget-alert" not in b_session.get(f"{stack.url}/hub/home", timeout=30).text
