"""End to end in headless Chromium: the instructor creates a workshop, a
student logs in with the printed sheet, finds the course in JupyterLab, and
is refused after the workshop is closed. Screenshots: artifacts/workshop/."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import require
from tests.support.hub import REPO
from tests.workshop.conftest import fresh_seats, lens
from tests.workshop.gitserve import make_course_repo, serve_dir

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = REPO / "artifacts" / "workshop"


@pytest.fixture
def browser():
    require(os.path.exists(CHROMIUM), "Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright Python package is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def login(page, url, username, password):
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    page.click("#login_submit")


def test_workshop_in_the_browser(wstack, browser, tmp_path):
    fresh_seats("brw-01", "brw-02")
    bare = make_course_repo(tmp_path, "oceans")
    with serve_dir(bare.parent) as base:
        # 1. the instructor creates the workshop
        r = lens(wstack, "create", "brw", "--seats", "2", "--expires", "+1d", "--profiles", "lab",
                 "--budget-per-seat", "3", "--content", f"{base}/oceans.git@main", "--instructors", "teachb")
        assert "2 created" in r.stdout
        sheet = wstack.state / "workshops" / "brw" / "credentials.html"
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(sheet.as_uri())
        page.screenshot(path=str(SHOTS / "01-credentials-sheet.png"), full_page=True)
        card = page.locator('.card[data-username="brw-01"]')
        username = card.locator(".username").inner_text().strip()
        password = card.locator(".password").inner_text().strip()
        assert username == "brw-01" and re.fullmatch(r"[a-z0-9]{3}-[a-z0-9]{3}-[a-z0-9]{3}", password)  # readable, 44 bits
        page.close()

        # 2. the student logs in with the card's credentials
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        page = ctx.new_page()
        page.set_default_timeout(180_000)
        login(page, wstack.url, username, password)
        page.wait_for_url("**/hub/spawn**")
        options = page.locator('input[name="profile"]')
        assert options.count() == 1 and options.first.get_attribute("value") == "lab"
        page.screenshot(path=str(SHOTS / "02-spawn-form.png"))
        page.click("form#spawn_form [type=submit]")
        # 3. the server starts, nbgitpuller pulls the course, JupyterLab opens it
        page.wait_for_url("**/user/brw-01/lab/tree/oceans**", timeout=240_000)
        page.get_by_text("01-intro.ipynb").first.wait_for(timeout=120_000)
        page.screenshot(path=str(SHOTS / "03-lab-with-content.png"))
        ctx.close()

    # 4. after close, the next login is refused with a clear message
    r = lens(wstack, "close", "brw")
    assert "2 account(s) disabled, 1 server(s) stopped" in r.stdout
    ctx = browser.new_context(viewport={"width": 1000, "height": 600})
    page = ctx.new_page()
    login(page, wstack.url, username, password)
    page.get_by_text("This account has been disabled.").wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "04-login-refused.png"))
    ctx.close()
