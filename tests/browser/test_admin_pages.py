"""The lens admin pages in a real browser, logged in through the hub's login form and
the service's OAuth (PKCE, JupyterHub 6.1): the admin sees the dashboards, a user
gets a readable 403, and no login step sends the browser off-site.

Headless Chromium (Debian's package) through Playwright against the real local
stack (tests/browser/conftest.py). Screenshots go to artifacts/browser/.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from tests.browser.test_e2e import log_in
from tests.support.hub import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

JOBS_MICRO = 1_234_567  # the spender's jobs spending, as the costs page's users table shows it
RATE = 0.321  # the spender's server event, as the admin page shows it ($0.321/h)


@pytest.fixture(scope="module")
def spender(stack):
    """A user with known spending (ledger) and a known server event, in the stack's database."""
    import sqlalchemy as sa

    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger
    from jupyter_ext.db.tables import server_events

    name = f"spender-{secrets.token_hex(3)}"
    stack.create_user(name)
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        Ledger(engine).record([f"user:{name}"], JOBS_MICRO, "jobs", f"{name}-job-1")
        with engine.begin() as conn:
            conn.execute(sa.insert(server_events).values(
                user=name, server="", profile="lab", rate_usd_per_hour=RATE, event="stop",
                at=datetime.now(UTC).replace(tzinfo=None)))
    finally:
        engine.dispose()
    return name


class OffSiteWatch:
    """Every request the browser makes to another host, refused before it leaves."""

    def __init__(self, context, host: str):
        self.host, self.seen = host, []
        context.route("**/*", self._route)

    def _route(self, route):
        netloc = urlsplit(route.request.url).netloc
        if netloc != self.host:
            self.seen.append(route.request.url)
            route.abort()
        else:
            route.continue_()


@pytest.fixture
def context(browser, stack):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=stack.url)
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


@pytest.fixture
def off_site(context, stack):
    return OffSiteWatch(context, urlsplit(stack.url).netloc)


def on_hub(page, stack) -> bool:
    return urlsplit(page.url).netloc == urlsplit(stack.url).netloc


def test_admin_sees_the_admin_and_costs_dashboards_through_the_browser_login(context, off_site, stack, spender, artifacts):
    page = context.new_page()
    log_in(page, "admin", ADMIN_PASSWORD, artifacts)

    # first visit: no lens cookie yet, so hub OAuth with PKCE, then the page itself
    response = page.goto("/services/lens/admin")
    assert response.status == 200, page.content()
    assert re.search(r"/services/lens/admin$", page.url), page.url
    artifacts(page, "admin-01-lens-admin")
    assert page.locator("h1").inner_text() == "lens admin"
    row = page.locator("tr").filter(has_text=spender)
    assert row.count() == 1, page.inner_text("body")
    assert f"${RATE:.3f}/h" in row.inner_text() and "lab" in row.inner_text()

    response = page.goto("/services/lens/admin/costs")
    assert response.status == 200, page.content()
    artifacts(page, "admin-02-lens-costs")
    assert page.locator("h1").inner_text() == "lens costs"
    plot = page.locator(".plot svg")
    plot.wait_for(state="visible")
    box = plot.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100, box
    assert plot.locator("path").count() > 10  # axes, ticks and the day's bar, drawn
    row = page.locator("tr").filter(has_text=spender)
    assert row.count() == 1, page.inner_text("body")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert f"user:{spender}" in cells and str(JOBS_MICRO) in cells, cells
    assert "Code verifier" not in stack.tail(400)
    assert off_site.seen == []


def test_a_user_gets_a_readable_403_not_a_500(context, off_site, stack, account, artifacts):
    name, password = account
    page = context.new_page()
    log_in(page, name, password, artifacts)
    for path in ("/services/lens/admin", "/services/lens/admin/costs"):
        response = page.goto(path)
        assert response.status == 403, (path, response.status, page.content())
        assert "This needs a hub admin." in page.locator("p").inner_text()
        assert "403" in page.locator("h1").inner_text() and "Traceback" not in page.content()
    artifacts(page, "admin-03-user-403")
    assert off_site.seen == []


# The open-redirect cases (login next=, the spawn form, the service's OAuth callback)
# are in tests/security/test_open_redirect.py.
