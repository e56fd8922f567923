"""Admin pages escape what users control (stored XSS), checked in real Chromium.

A user plants markup through the normal APIs: as a job name and a tag value (the
spec validation refuses both), as an archive's name and repository (stored as
given), as a profile name (refused). What the APIs cannot carry but another
authenticator or a group could (a user name from an OAuth identity provider, a
group name) is written straight into the lens database, as the hub's events and
the ledger would record it. Then a hub admin, logged in through the hub's form
and the service's OAuth, opens every admin page lens serves: no payload runs
(``window.__xss`` stays undefined, no injected element exists) and the payload
is shown as text.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
import requests

from tests.browser.test_e2e import log_in
from tests.support.browser import chromium_browser
from tests.support.hub import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

PAYLOADS = ['<img src=x onerror="window.__xss=1">', '"><script>window.__xss=1</script>']
ADMIN_PAGES = ["/services/lens/admin", "/services/lens/admin/costs", "/services/lens/admin/costs?days=3650"]


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture
def context(browser, stack):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=stack.url)
    ctx.set_default_timeout(60_000)
    yield ctx
    ctx.close()


def lens_api(stack, method, path, token, **kw) -> requests.Response:
    return requests.request(method, f"{stack.url}/services/lens/api/{path}",
                            headers={"Authorization": f"token {token}"}, timeout=30, **kw)


@pytest.fixture(scope="module")
def planted(stack):
    """The payloads, planted by a user through the APIs and (where they refuse) in the database."""
    import sqlalchemy as sa

    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger
    from jupyter_ext.db.tables import server_events

    name = f"xss-{secrets.token_hex(3)}"
    token = stack.create_user(name)
    for i, payload in enumerate(PAYLOADS):
        # job name and tag value: refused by the spec validation, with a JSON error
        for spec in ({"name": payload, "command": ["true"], "walltime": "5m"},
                     {"name": "ok", "command": ["true"], "walltime": "5m", "tags": {"team": payload}}):
            r = lens_api(stack, "POST", "jobs", token, json={"spec": spec})
            assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json"), r.text
        # archive name and repository: free text, stored as given
        r = lens_api(stack, "POST", "archives", token, json={"archive_id": f"xss{i}", "name": payload,
                                                               "repository": payload, "size": 1})
        assert r.status_code == 201, r.text
        # a profile name: refused
        r = stack.api("POST", f"/users/{name}/server", token=token, json={"profile": payload})
        assert 400 <= r.status_code < 500, r.text
    listed = lens_api(stack, "GET", "archives", token).json()["archives"]
    assert {a["name"] for a in listed} == set(PAYLOADS)
    # what an identity provider's user name or a group name could carry, as lens records it
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        ledger = Ledger(engine)
        for i, payload in enumerate(PAYLOADS):
            # the ledger (what the costs page lists) refuses such account names outright
            for account in (f"user:{payload}", f"group:{payload}"):
                with pytest.raises(ValueError, match="is not valid"):
                    ledger.record([account], 1000 + i, "jobs", f"xss-{i}")
            ledger.record([f"user:{name}"], 1000 + i, "jobs", f"xss-{i}")  # the planter's own, real row
            with engine.begin() as conn:
                conn.execute(sa.insert(server_events).values(
                    user=payload, server="", profile=payload, rate_usd_per_hour=0.5, event=payload,
                    at=datetime.now(UTC).replace(tzinfo=None)))
    finally:
        engine.dispose()
    return name


def xss_fired(page, wait: float = 1.5) -> bool:
    """Whether a payload ran; onerror fires once the image fails, so give it a moment."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if page.evaluate("typeof window.__xss !== 'undefined'"):
            return True
        page.wait_for_timeout(100)
    return False


def test_the_probe_sees_a_payload_that_runs(context, stack):
    """Control: rendered unescaped, both payloads do run and are caught."""
    page = context.new_page()
    for payload in PAYLOADS:
        page.goto("/hub/login")
        page.set_content(f'<p><a title="{payload}">x</a></p><div>{payload}</div>')
        assert xss_fired(page), payload


def test_admin_pages_escape_what_users_control(context, stack, planted):
    dialogs = []
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, "admin", ADMIN_PASSWORD, lambda *a: None)
    for path in ADMIN_PAGES:
        response = page.goto(path)
        assert response.status == 200, (path, response.status)
        page.wait_for_load_state("load")
        assert not xss_fired(page), f"{path}: a planted payload ran"
        assert page.locator("img[src='x']").count() == 0, path
        assert page.locator("script", has_text="__xss").count() == 0, path
        text = page.inner_text("body")
        if path == "/services/lens/admin":  # the server events: user, profile and event as recorded
            for payload in PAYLOADS:
                assert payload in text, f"{path}: {payload!r} is not shown as text"
        else:  # the costs tables: account names (validated), the planter's among them
            assert f"user:{planted}" in text, path
    # what lens reflects: an error page that quotes a bad argument
    response = page.goto(f"/services/lens/admin/costs?days={quote(PAYLOADS[0])}")
    assert response.status == 400 and not xss_fired(page)
    assert page.locator("img[src='x']").count() == 0 and PAYLOADS[0] not in page.content()
    # JupyterHub's own admin page, listing the users (including the planter)
    page.goto("/hub/admin")
    page.wait_for_selector(f"text={planted}")
    assert not xss_fired(page)
    assert dialogs == []
