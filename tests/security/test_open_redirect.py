"""No open redirect: through the hub login's ``next=``, the spawn form's ``next=``,
or the lens service's OAuth callback, the browser never leaves the hub's host.

Real Chromium (a browser, because browsers read ``/\\host`` as ``//host``), the
real stack of tests/browser/conftest.py. Every request to another host is
recorded and aborted before it leaves. These cases replace the two that lived in
tests/browser/test_admin_pages.py.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from tests.browser.conftest import account, browser, stack  # noqa: F401  (fixtures)
from tests.browser.test_admin_pages import OffSiteWatch, on_hub

pytestmark = pytest.mark.browser

EVIL = "evil.example"
TARGETS = [f"//{EVIL}/", f"/\\{EVIL}/", f"https://{EVIL}/", "%2F%2Fevil.example/", f"http://{EVIL}/services/lens/admin",
           f"///{EVIL}/", f"\\\\{EVIL}/", f"https:{EVIL}/", f"/%5C{EVIL}/"]


@pytest.fixture
def context(browser, stack):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, base_url=stack.url)
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


@pytest.fixture
def off_site(context, stack):  # noqa: F811
    return OffSiteWatch(context, urlsplit(stack.url).netloc)


def log_in(page, name: str, password: str) -> None:
    """The hub's login form; it lands on the spawn form or, once the server runs, on the server."""
    page.goto("/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)


def settle(page) -> None:
    page.wait_for_load_state()
    page.wait_for_timeout(300)  # a client-side redirect (meta refresh, JS) would have started by now


@pytest.mark.parametrize("target", TARGETS)
def test_the_hub_login_next_stays_on_the_hub(context, off_site, stack, account, target):  # noqa: F811
    name, password = account
    page = context.new_page()
    page.goto(f"/hub/login?next={quote(target, safe='')}")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)  # logged in, sent on: where to?
    settle(page)
    assert on_hub(page, stack), page.url
    # logged in already: the login page sends the browser straight on
    page.goto(f"/hub/login?next={quote(target, safe='')}")
    settle(page)
    assert on_hub(page, stack), page.url
    assert off_site.seen == []


@pytest.mark.parametrize("target", TARGETS)
def test_the_spawn_form_next_stays_on_the_hub(context, off_site, stack, account, target):  # noqa: F811
    name, password = account
    page = context.new_page()
    log_in(page, name, password)
    running = bool(stack.api("GET", f"/users/{name}").json().get("servers"))
    page.goto(f"/hub/spawn?next={quote(target, safe='')}")
    if not running:  # the form: submit it, as a user would, with ?next= still in the URL
        page.wait_for_selector("form#spawn_form")
        page.locator('form#spawn_form input[name="profile"][value="lab"]').check()
        page.click('form#spawn_form button[type="submit"]')
        stack.wait_server(name, timeout=120)
        page.wait_for_url(lambda url: "spawn-pending" not in url, timeout=120_000)
    settle(page)
    assert on_hub(page, stack), page.url
    # the server runs: /hub/spawn and /hub/spawn/NAME redirect at once
    for path in ("/hub/spawn", f"/hub/spawn/{name}"):
        page.goto(f"{path}?next={quote(target, safe='')}")
        settle(page)
        assert on_hub(page, stack), (path, page.url)
    assert off_site.seen == []


@pytest.mark.parametrize("target", TARGETS)
def test_the_services_oauth_callback_stays_on_the_hub(context, off_site, stack, account, target):  # noqa: F811
    name, password = account
    page = context.new_page()
    # not logged in to lens: a state the service never made is refused
    response = page.goto(f"/services/lens/oauth_callback?code=x&state={quote(target, safe='')}"
                         f"&next={quote(target, safe='')}")
    assert response.status == 403 and on_hub(page, stack), page.url

    # logged in (hub and lens): a stale or forged state still goes nowhere but the service
    log_in(page, name, password)
    assert page.goto("/services/lens/admin").status == 403  # logs in to lens (OAuth): not an admin
    assert page.goto("/services/lens/api/me").status == 200  # the lens cookie identifies the user
    page.goto(f"/services/lens/oauth_callback?code=x&state={quote(target, safe='')}&next={quote(target, safe='')}")
    settle(page)
    assert on_hub(page, stack), page.url
    assert urlsplit(page.url).path.startswith("/services/lens/"), page.url
    # a login the service starts itself, asked to come back to an off-site page
    page.goto(f"/services/lens/admin?next={quote(target, safe='')}")
    settle(page)
    assert on_hub(page, stack), page.url
    assert off_site.seen == []
