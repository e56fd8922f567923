"""Sharing a server (issue 17 §2) and R in JupyterLab (§3), in Chromium on the real stack.

alice shares her running lab with bob (`lens share`, her own hub token); both open
the same notebook in their own browser context (each logged in through the hub,
bob through the hub's OAuth confirmation for a server that is not his) and each
sees the other's typing (jupyter-collaboration). bob reaches nothing else of
alice's nor carol's server; the server's cost stays alice's; once alice revokes,
bob gets 403 within seconds. carol runs a profile with collaboration off, and an
R notebook.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time

import pytest
import requests
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.browser.conftest import browser_stack
from tests.support.browser import wait_for_kernel
from tests.support.hub import REPO
from tests.support.unix import remove_account

pytestmark = pytest.mark.browser

SPAWN_TIMEOUT_MS = 120_000
UI_TIMEOUT_MS = 60_000
REVOKE_DEADLINE_S = 20  # the servers trust the hub's answer 5 s (auth_cache_seconds); margin for 2 busy cores


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The browser stack, with a `lab-solo` profile: lab with real-time collaboration off."""
    root = tmp_path_factory.mktemp("lens-sharing")
    catalog = yaml.safe_load((REPO / "hub_config" / "profiles.yaml").read_text())
    lab = next(p for p in catalog["profiles"] if p["slug"] == "lab")
    catalog["profiles"].append({**lab, "slug": "lab-solo", "default": False, "collaboration": False,
                                "display_name": "JupyterLab (no collaboration)"})
    (root / "profiles.yaml").write_text(yaml.safe_dump(catalog))
    (root / "profiles.yaml").chmod(0o644)
    yield from browser_stack(root, {"LENS_PROFILES": str(root / "profiles.yaml")})


@pytest.fixture(scope="module")
def people(stack):
    """alice, bob and carol: password accounts with a token each; their unix accounts go afterwards."""
    tag = secrets.token_hex(2)
    made = {}
    for who in ("alice", "bob", "carol"):
        name, password = f"{who}-{tag}", secrets.token_urlsafe(12)
        stack.add_account(name, password)
        made[who] = {"name": name, "password": password, "token": stack.login_token(name, password)}
    yield made
    for person in made.values():
        if stack.api("GET", f"/users/{person['name']}").json().get("servers"):
            stack.stop_server(person["name"])
        if os.geteuid() == 0:
            remove_account(f"jupyter-{person['name']}")


def lens_share(stack, token: str, *args: str) -> subprocess.CompletedProcess:
    """`lens share ARGS` as a user outside any server: their token on stdin, the hub's URL."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("JUPYTERHUB_")}
    return subprocess.run([stack.python, "-m", "jupyter_ext.cli.main", "share", "--hub-url", stack.url,
                           "--token-stdin", *args], input=token + "\n", capture_output=True, text=True,
                          env=env, timeout=60)


def server_get(stack, path: str, token: str) -> requests.Response:
    return requests.get(f"{stack.url}{path}", headers={"Authorization": f"token {token}"}, timeout=30,
                        allow_redirects=False)


def log_in(page, person) -> None:
    page.goto("/hub/login")
    page.fill("#username_input", person["name"])
    page.fill("#password_input", person["password"])
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/(home|spawn)|/user/"))  # a running server: straight to it


def open_notebook(page, url: str):
    page.goto(url)
    # a guest confirms, once, that alice's server may know who they are (JupyterHub's OAuth page)
    authorize = page.locator("form button[type=submit]", has_text="Authorize")
    lab = page.locator(".jp-NotebookPanel")
    lab.or_(authorize).first.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
    if authorize.is_visible():
        authorize.click()
    lab.first.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputArea-editor .cm-content").first


def wait_text(locator, text: str, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = locator.inner_text()
        if text in seen:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared; the cell holds {seen!r}")


def costs(stack, name: str) -> float:
    r = requests.get(f"{stack.url}/services/lens/api/costs", params={"user": name},
                     headers={"Authorization": f"token {stack.admin_token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return float(r.json()["by_category"].get("servers", 0))


def test_alice_shares_her_lab_with_bob_they_edit_together_then_she_revokes(stack, browser, people, artifacts):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    for person, profile in ((alice, "lab"), (carol, "lab-solo")):
        r = stack.spawn(person["name"], profile, token=person["token"])
        assert r.status_code in (201, 202), r.text
    a, c = alice["name"], carol["name"]
    r = requests.put(f"{stack.url}/user/{a}/api/contents/together.ipynb",
                     headers={"Authorization": f"token {alice['token']}"}, timeout=30,
                     json={"type": "notebook", "content": {
                         "cells": [{"cell_type": "code", "id": "shared-cell", "source": "", "metadata": {},
                                    "outputs": [], "execution_count": None}],
                         # a kernelspec, or JupyterLab asks which kernel (a modal dialog) on opening
                         "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                     "language": "python"}},
                         "nbformat": 4, "nbformat_minor": 5}})
    assert r.status_code in (200, 201), r.text

    # -- the clear refusals, before anything is shared
    missing_user = lens_share(stack, alice["token"], "add", "--user", "nobody-" + secrets.token_hex(3))
    assert missing_user.returncode == 2 and "No such user" in missing_user.stderr, missing_user.stderr
    missing_group = lens_share(stack, alice["token"], "add", "--group", "no-group-" + secrets.token_hex(3))
    assert missing_group.returncode == 2 and "No such group" in missing_group.stderr, missing_group.stderr
    not_hers = lens_share(stack, bob["token"], "add", "--owner", a, "--user", bob["name"])
    assert not_hers.returncode == 2 and f"Only {a}, whose server it is" in not_hers.stderr, not_hers.stderr
    # REST too, at the lens service and at the hub: alice may not share carol's server
    r = requests.post(f"{stack.url}/services/lens/api/shares/{c}", json={"user": bob["name"]},
                      headers={"Authorization": f"token {alice['token']}"}, timeout=30)
    assert r.status_code == 403 and f"Only {c}" in r.json()["message"], r.text
    r = stack.api("POST", f"/shares/{c}/", token=alice["token"], json={"user": bob["name"]})
    assert r.status_code == 404, r.text  # the hub's own API does not even confirm carol's server exists
    # and no user looks other users' names up at the hub (sharing by name goes through lens)
    assert stack.api("GET", f"/users/{c}", token=alice["token"]).status_code == 404
    assert server_get(stack, f"/user/{a}/api/contents", bob["token"]).status_code == 403

    ctx_a = browser.new_context(viewport={"width": 1300, "height": 850}, base_url=stack.url)
    ctx_b = browser.new_context(viewport={"width": 1300, "height": 850}, base_url=stack.url)
    try:
        for ctx in (ctx_a, ctx_b):
            ctx.set_default_timeout(UI_TIMEOUT_MS)
        page_a, page_b = ctx_a.new_page(), ctx_b.new_page()
        log_in(page_a, alice)
        log_in(page_b, bob)
        bob_closed: list[str] = []  # websockets of bob's page that the server closed
        page_b.on("websocket", lambda ws: ws.on("close", lambda closed: bob_closed.append(closed.url)))
        notebook = f"/user/{a}/lab/tree/together.ipynb"
        cell_a = open_notebook(page_a, notebook)

        # -- alice shares with bob from JupyterLab: the lens panel's Sharing tab
        page_a.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jp-lens-panel"]').click()
        page_a.locator("#jp-lens-panel .lm-TabBar-tab", has_text="Sharing").click()
        sharing = page_a.locator("#jp-lens-sharing")
        sharing.get_by_text("is not shared").wait_for()
        for name, expect in (("nobody-" + secrets.token_hex(3), "No such user"), (bob["name"], "Shared with user")):
            sharing.locator("#jp-lens-share-name").fill(name)
            sharing.get_by_role("button", name="Share").click()
            sharing.locator(".jp-lens-share-message", has_text=expect).wait_for()
        sharing.locator("table.jp-lens-share-table", has_text=bob["name"]).wait_for()
        artifacts(page_a, "sharing-00-alice-shares-from-the-panel")
        listed = lens_share(stack, alice["token"], "list")  # the CLI sees the same share
        assert bob["name"] in listed.stdout, listed.stdout
        mine = lens_share(stack, bob["token"], "with-me")
        assert f"/user/{a}/" in mine.stdout, mine.stdout

        cell_b = open_notebook(page_b, notebook)
        # bob works in alice's server, but only alice manages its shares
        assert ctx_b.request.get(f"/user/{a}/lens/api/shares").status == 403
        artifacts(page_b, "sharing-01-bob-in-alices-lab")

        page_a.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jp-lens-panel"]').click()  # close it
        cell_a.click()
        page_a.keyboard.type("alice_wrote = 1")
        wait_text(cell_b, "alice_wrote = 1")
        cell_b.click()
        page_b.keyboard.press("Control+End")
        page_b.keyboard.type("  # and bob too")
        wait_text(cell_a, "# and bob too")
        artifacts(page_a, "sharing-02-alice-sees-bob")

        # -- bob reaches alice's shared server only: not carol's, not alice's hub-level things
        assert ctx_b.request.get(f"/user/{a}/api/contents", max_redirects=0).status == 200
        to_carol = ctx_b.request.get(f"/user/{c}/api/contents")
        assert to_carol.status == 403, to_carol.status
        assert server_get(stack, f"/user/{c}/api/contents", bob["token"]).status_code == 403
        assert stack.api("GET", f"/users/{a}", token=bob["token"]).status_code == 404  # not even listed
        assert stack.api("DELETE", f"/users/{a}/server", token=bob["token"]).status_code in (403, 404)

        # -- alice revokes: bob's browser session gets 403 within seconds
        revoked = lens_share(stack, alice["token"], "revoke", "--user", bob["name"])
        assert revoked.returncode == 0, revoked.stderr
        again = lens_share(stack, alice["token"], "revoke", "--user", bob["name"])  # the hub says "done"
        assert again.returncode == 2 and f"is not shared with user {bob['name']}" in again.stderr, again.stderr
        t0 = time.monotonic()
        status = None
        while time.monotonic() - t0 < REVOKE_DEADLINE_S:
            status = ctx_b.request.get(f"/user/{a}/api/contents", max_redirects=0).status
            if status == 403:
                break
            time.sleep(0.25)
        took = time.monotonic() - t0
        print(f"revoke -> bob's 403 in {took:.1f} s")
        assert status == 403, f"bob still gets {status} {took:.0f} s after the revoke"
        assert ctx_a.request.get(f"/user/{a}/api/contents", max_redirects=0).status == 200  # alice unaffected

        # -- and bob's open page loses its live connections: what he types no longer reaches alice
        while time.monotonic() - t0 < REVOKE_DEADLINE_S + 10 and not any("/room/" in u for u in bob_closed):
            page_b.wait_for_timeout(250)  # (lets Playwright deliver the close events)
        print(f"revoke -> bob's collaboration socket closed in {time.monotonic() - t0:.1f} s")
        assert any("/room/" in u for u in bob_closed), f"bob's sockets still open; closed: {bob_closed}"
        dialogs = page_b.locator(".jp-Dialog")
        if dialogs.count():  # JupyterLab tells bob it lost the server; he types anyway
            print("bob's lab says:", dialogs.first.inner_text()[:200].replace("\n", " "))
            page_b.keyboard.press("Escape")
        cell_b.click(force=True)
        page_b.keyboard.press("Control+End")
        page_b.keyboard.type("  # bob after the revoke")
        deadline = time.monotonic() + 6  # edits reached alice in well under a second while shared
        while time.monotonic() < deadline:
            assert "after the revoke" not in cell_a.inner_text()
            page_a.wait_for_timeout(250)
        assert "is not shared" in lens_share(stack, alice["token"], "list").stdout
    finally:
        ctx_a.close()
        ctx_b.close()

    # -- collaboration is a per-profile switch: carol's lab-solo server runs without it
    assert '"disableRTC": true' in server_get(stack, f"/user/{c}/lab", carol["token"]).text
    assert '"disableRTC": false' in server_get(stack, f"/user/{a}/lab", alice["token"]).text

    # -- the shared server's time is alice's: bob, who used it, is charged nothing
    stack.stop_server(a)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and costs(stack, a) <= 0:
        time.sleep(0.5)
    assert costs(stack, a) > 0
    assert costs(stack, bob["name"]) == 0


def test_an_r_cell_runs_in_jupyterlab(stack, browser, people, artifacts):
    """The lab profile's R kernel (Debian's r-base and r-cran-irkernel, installed by make)."""
    carol = people["carol"]
    if not stack.api("GET", f"/users/{carol['name']}").json().get("servers"):
        assert stack.spawn(carol["name"], "lab", token=carol["token"]).status_code in (201, 202)
    specs = server_get(stack, f"/user/{carol['name']}/api/kernelspecs", carol["token"]).json()["kernelspecs"]
    assert "ir" in specs, f"no R kernel in {sorted(specs)}: run `make` (apt r-base r-cran-irkernel)"
    ctx = browser.new_context(viewport={"width": 1300, "height": 850}, base_url=stack.url)
    try:
        ctx.set_default_timeout(UI_TIMEOUT_MS)
        page = ctx.new_page()
        log_in(page, carol)
        page.goto(f"/user/{carol['name']}/lab")
        card = page.locator('.jp-LauncherCard[data-category="Notebook"]').filter(has_text=re.compile(r"^R$")).first
        card.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
        card.click()
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").last
        wait_for_kernel(page, "R", SPAWN_TIMEOUT_MS)
        code = 'cat(paste("R says", 6 * 7))'
        editor = panel.locator(".jp-Cell .jp-InputArea-editor .cm-content").first
        editor.click()
        page.keyboard.type(code)
        expect(editor).to_have_text(code)
        page.keyboard.press("Shift+Enter")
        output = panel.locator(".jp-OutputArea-output").first
        try:
            output.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
        except PlaywrightTimeout:
            artifacts(page, "sharing-03-r-notebook-failed")
            raise AssertionError(f"the R cell gave no output; cells: {panel.locator('.jp-Cell').all_inner_texts()}; "
                                 f"server log:\n{stack.tail(40)}") from None
        assert output.inner_text().strip() == "R says 42"
        artifacts(page, "sharing-03-r-notebook")
    finally:
        ctx.close()
