"""In a real browser: a user with $0.01 of budget left asks for the GPU workstation,
is refused with a page that says why, and can still start JupyterLab, which fits.

The stack (tests/browser/conftest.py) gates a start on 6 minutes of the profile's
rate: gpu needs $0.1006, lab $0.0096. The user's spending is real ledger entries
in the stack's database, made before login, so the budget banner shows too.
"""

from __future__ import annotations

import os
import re
import secrets

import pytest

from tests.browser.test_e2e import SPAWN_TIMEOUT_MS, log_in, open_form, start_from_form
from tests.support.unix import remove_account

pytestmark = pytest.mark.browser
D = 1_000_000


@pytest.fixture
def nearly_broke(stack):
    """A gpu-users member with a $5.00 budget of which $4.99 is spent."""
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    name, password = f"cent-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    stack.add_account(name, password)
    stack.create_user(name, groups=["gpu-users"])
    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        ledger = Ledger(engine)
        ledger.set_budget(f"user:{name}", 5 * D)
        ledger.record([f"user:{name}"], 4_990_000, "jobs", "earlier-jobs")
        assert ledger.summary(f"user:{name}").available_micro == 10_000
    finally:
        engine.dispose()
    yield name, password
    if stack.api("GET", f"/users/{name}").json().get("servers"):
        stack.stop_server(name)
    if os.geteuid() == 0:
        remove_account(f"jupyter-{name}")


def test_one_cent_left_refuses_gpu_but_starts_lab(browser, stack, nearly_broke, artifacts):
    name, password = nearly_broke
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=stack.url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        log_in(page, name, password, artifacts)
        labels = open_form(page)
        assert {"lab", "gpu"} <= set(labels)
        assert labels["gpu"].query_selector(".lens-rate").inner_text() == "$1.006/h"
        assert labels["gpu"].query_selector('input[name="profile"]').is_enabled()
        form_text = page.inner_text("form#spawn_form")
        assert "$0.01" in form_text, form_text  # the budget left, next to the prices
        artifacts(page, "budget-01-form")

        # -- gpu: refused by the budget, with the reason and the numbers
        start_from_form(page, "gpu")
        refusal = page.locator(".alert-danger").filter(has_text=re.compile("budget", re.I)).first
        refusal.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
        artifacts(page, "budget-02-gpu-refused")
        text = refusal.inner_text()
        assert f"Budget of user:{name} is not enough" in text, text
        assert "$0.10" in text and "only $0.01 of $5.00 remains" in text, text
        assert "SpawnException" not in text and "Traceback" not in page.inner_text("body"), text
        model = stack.api("GET", f"/users/{name}").json()
        assert not model["servers"], model  # nothing started, nothing half-made

        # -- lab fits in what is left, so it starts
        start_from_form(page, "lab")
        page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=SPAWN_TIMEOUT_MS)
        page.locator(".jp-LauncherCard").first.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
        artifacts(page, "budget-03-lab-started")
        server = stack.api("GET", f"/users/{name}").json()["servers"][""]
        assert server["ready"] and server["user_options"] == {"profile": "lab"}

        # -- the hub's banner names the threshold passed (refreshed in the background)
        for _ in range(20):
            page.goto("/hub/home")
            if page.locator(".lens-budget-alert").count():
                break
            page.wait_for_timeout(1000)
        banner = page.locator(".lens-budget-alert").inner_text()
        artifacts(page, "budget-04-banner")
        assert "Your budget" in banner and "passed 80%" in banner, banner
    finally:
        context.close()
