"""lens in JupyterLab, in a real browser: the status bar, the side panel (Jobs, Costs,
Archives) and the file browser's "Archive…", against the real stack.

The user's spending is real ledger entries in the stack's database; jobs run on the
local backend; archives are made and restored by the user's own server. Screenshots
go to artifacts/browser/lab-*.png.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from urllib.parse import urlparse

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.test_e2e import SPAWN_TIMEOUT_MS, log_in, start_from_form
from tests.support.hub import REPO
from tests.support.unix import remove_account

pytestmark = pytest.mark.browser
D = 1_000_000
AXE = REPO / "labextension/node_modules/axe-core/axe.min.js"
JOB_TIMEOUT_MS = 240_000


def ledger_of(stack):
    from jupyter_ext.costs.db import make_engine
    from jupyter_ext.costs.ledger import Ledger

    engine = make_engine(f"sqlite:///{stack.state / 'lens.sqlite'}")
    return Ledger(engine), engine


def spend(stack, name: str, micro: int, ref: str, budget: int | None = None) -> None:
    ledger, engine = ledger_of(stack)
    try:
        if budget is not None:
            ledger.set_budget(f"user:{name}", budget)
        if micro:
            ledger.record([f"user:{name}"], micro, "jobs", ref)
    finally:
        engine.dispose()


def new_user(stack):
    name, password = f"lab-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    stack.add_account(name, password)
    return name, password


def remove_user(stack, name: str) -> None:
    if stack.api("GET", f"/users/{name}").json().get("servers"):
        stack.stop_server(name)
    if os.geteuid() == 0:
        remove_account(f"jupyter-{name}")


def open_lab(browser, stack, name, password, artifacts):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=stack.url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    log_in(page, name, password, artifacts)
    start_from_form(page, "lab")
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=SPAWN_TIMEOUT_MS)
    page.locator(".jp-LauncherCard").first.wait_for(state="visible", timeout=SPAWN_TIMEOUT_MS)
    dismiss_news(page)
    return context, page


def dismiss_news(page) -> None:
    """A venv made before the wheel's overrides.json (see tests/installed) still asks about
    Jupyter news; the toast would cover the panel's lower buttons."""
    toast = page.locator(".Toastify__toast", has_text="Jupyter news")
    try:
        toast.wait_for(state="visible", timeout=4_000)
    except PlaywrightTimeoutError:
        return
    toast.get_by_role("button", name="No", exact=True).click()
    toast.wait_for(state="hidden")


def status_item(page):
    item = page.locator("button.jp-lens-status")
    item.wait_for(state="visible")
    page.wait_for_function("() => !['loading'].includes(document.querySelector('.jp-lens-status').dataset.level)")
    return item


def tab(page, label: str):
    page.locator("#jp-lens-panel .lm-TabBar-tab", has_text=label).click()


def contents(stack, name: str, token: str, path: str, model: dict) -> requests.Response:
    return requests.put(f"{stack.url}/user/{name}/api/contents/{path}", json=model,
                        headers={"Authorization": f"token {token}"}, timeout=30)


@pytest.fixture(scope="module")
def owner(stack):
    name, password = new_user(stack)
    spend(stack, name, 1 * D, "earlier-work", budget=10 * D)
    yield name, password
    remove_user(stack, name)


@pytest.fixture(scope="module")
def lab(browser, stack, owner, artifacts):
    context, page = open_lab(browser, stack, *owner, artifacts)
    yield page
    context.close()


def summary(stack, name: str) -> dict:
    token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 300}).json()["token"]
    r = requests.get(f"{stack.url}/user/{name}/lens/api/summary",
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def shown(s: dict) -> str:
    return f"${s['hourly_cost_usd']:.3f}/h · ${s['spent_usd']:.2f} this month · ${s['remaining_usd']:.2f} left"


def test_status_bar_shows_rate_spend_budget_and_a_threshold_crossing(lab, stack, owner, artifacts):
    name, _ = owner
    item = status_item(lab)
    s = summary(stack, name)
    # $10 budget, $1 spent, and the running server's start hold (6 minutes of its rate)
    assert (s["budget_usd"], s["spent_usd"], s["profile"]) == (10.0, 1.0, "lab"), s
    assert s["hourly_cost_usd"] > 0 and 0 < s["held_usd"] < 0.1 and s["level"] == "ok", s
    assert item.inner_text() == shown(s)
    assert item.get_attribute("data-level") == "ok"
    artifacts(lab, "lab-01-status-ok")

    spend(stack, name, 7 * D, "crossing")  # $8 of $10: past 50 % and 80 %
    lab.reload()
    item = status_item(lab)
    s = summary(stack, name)
    assert s["spent_usd"] == 8.0 and s["passed"] == 80 and s["level"] == "warn", s
    assert item.inner_text() == shown(s)
    assert item.get_attribute("data-level") == "warn"
    assert "passed 80%" in item.get_attribute("title")
    # coloured by the theme's warning colour, not the 'ok' one
    warn = lab.evaluate("""() => { const p = document.createElement('span');
        p.style.color = 'var(--jp-warn-color0)'; document.body.append(p);
        const c = getComputedStyle(p).color; p.remove(); return c; }""")
    assert item.evaluate("e => getComputedStyle(e).color") == warn
    artifacts(lab, "lab-02-status-warn")

    # a click opens the Costs tab, with the same figures
    item.click()
    costs = lab.locator("#jp-lens-costs")
    costs.wait_for(state="visible")
    costs.locator("table.jp-lens-categories").wait_for()
    body = costs.inner_text()
    assert "$8.0000" in body and "80" in body and "passed 80%" in body, body
    assert costs.locator("svg.jp-lens-chart rect").count() >= 1
    artifacts(lab, "lab-03-costs-tab")


def close_lens_sidebar(page) -> None:
    lens_tab = page.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jp-lens-panel"]')
    if "lm-mod-current" in (lens_tab.get_attribute("class") or ""):
        lens_tab.click()
    page.locator("#jp-lens-panel").wait_for(state="hidden")


def test_one_request_per_interval_and_none_while_hidden(lab, stack, owner):
    """The refresh interval is a setting (5 s here); a hidden browser tab asks nothing."""
    name, _ = owner
    token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 300}).json()["token"]
    r = requests.put(f"{stack.url}/user/{name}/lab/api/settings/jupyterlab-lens:plugin",
                     json={"raw": json.dumps({"refreshInterval": 5})},
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 204, r.text
    calls: list[float] = []

    def count(request):
        if urlparse(request.url).path.endswith("/lens/api/summary"):  # ServerConnection adds ?<time>
            calls.append(time.monotonic())

    lab.on("request", count)
    try:
        lab.reload()
        status_item(lab)
        dismiss_news(lab)
        close_lens_sidebar(lab)  # only the status bar asks now
        calls.clear()
        lab.wait_for_timeout(12_500)
        assert 2 <= len(calls) <= 3, calls  # 12.5 s at one call per 5 s
        gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
        assert all(g > 4 for g in gaps), gaps

        lab.evaluate("""() => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
                               document.dispatchEvent(new Event('visibilitychange')); }""")
        calls.clear()
        lab.wait_for_timeout(11_000)
        assert calls == [], calls
        lab.evaluate("""() => { Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
                               document.dispatchEvent(new Event('visibilitychange')); }""")
        lab.wait_for_timeout(1_000)
        assert len(calls) == 1, calls  # back after more than an interval: at once
    finally:
        requests.put(f"{stack.url}/user/{name}/lab/api/settings/jupyterlab-lens:plugin", json={"raw": "{}"},
                     headers={"Authorization": f"token {token}"}, timeout=30)
        lab.remove_listener("request", count)


def test_submit_from_the_form_then_follow_logs_to_the_cost(lab, owner, artifacts):
    lab.locator("button.jp-lens-status").click()
    tab(lab, "Jobs")
    jobs = lab.locator("#jp-lens-jobs")
    jobs.wait_for(state="visible")
    lab.fill("#jp-lens-job-name", "hello")
    lab.select_option("#jp-lens-job-backend", "local")
    lab.fill("#jp-lens-job-walltime", "5m")
    lab.fill("#jp-lens-job-command", "python3 -c print(6*7)")
    submit = jobs.get_by_role("button", name="Submit", exact=True)
    assert submit.is_disabled()  # no estimate yet
    jobs.get_by_role("button", name="Estimate the cost of this job").click()
    estimate = jobs.locator(".jp-lens-estimate-text")
    estimate.wait_for()
    assert re.search(r"Estimate: \$\d+\.\d{4} expected, at most \$\d+\.\d{4}", estimate.inner_text())
    artifacts(lab, "lab-04-job-estimate")
    submit.click()
    submitted = jobs.locator(".jp-lens-submitted")
    submitted.wait_for()
    job_id = re.search(r"Submitted (j-[0-9a-f]+)", submitted.inner_text()).group(1)

    state = jobs.locator(".jp-lens-log-state")
    state.filter(has_text="SUCCEEDED").wait_for(timeout=JOB_TIMEOUT_MS)
    assert "42" in jobs.locator("pre.jp-lens-log").inner_text()
    assert re.search(r"cost \$\d+\.\d{4}", state.inner_text()), state.inner_text()
    row = jobs.locator("table.jp-lens-jobs tr", has_text=job_id)
    row.filter(has_text="SUCCEEDED").wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "SUCCEEDED" and cells[4] == "local" and cells[6] == "$0.0000", cells
    artifacts(lab, "lab-05-job-done")


def test_cancel_a_running_job(lab, artifacts):
    jobs = lab.locator("#jp-lens-jobs")
    lab.fill("#jp-lens-job-name", "sleeper")
    lab.fill("#jp-lens-job-walltime", "20m")
    lab.fill("#jp-lens-job-command", "sleep 600")
    jobs.get_by_role("button", name="Estimate the cost of this job").click()
    jobs.locator(".jp-lens-estimate-text").wait_for()
    jobs.get_by_role("button", name="Submit", exact=True).click()
    submitted = jobs.locator(".jp-lens-submitted")
    submitted.wait_for()
    job_id = re.search(r"Submitted (j-[0-9a-f]+)", submitted.inner_text()).group(1)
    row = jobs.locator("table.jp-lens-jobs tr", has_text=job_id)
    assert row.locator("td").nth(6).inner_text() != "$0.0000"  # held while it runs
    row.get_by_role("button", name=f"Cancel sleeper ({job_id})").click()
    row.filter(has_text="CANCELLED").wait_for(timeout=JOB_TIMEOUT_MS)
    assert row.get_by_role("button", name=re.compile("^Cancel")).count() == 0
    artifacts(lab, "lab-06-job-cancelled")


def test_submit_a_script_from_the_file_browser(lab, stack, owner, artifacts):
    name, _ = owner
    script = f"six-{secrets.token_hex(3)}.py"
    token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 600}).json()["token"]
    r = contents(stack, name, token, script, {"type": "file", "format": "text", "content": "print(6 * 7)\n"})
    assert r.status_code == 201, r.text
    item = lab.locator(".jp-DirListing-item", has_text=script).first
    item.wait_for(timeout=30_000)
    item.click(button="right")
    lab.locator(".lm-Menu-item", has_text="Submit as job…").click()
    jobs = lab.locator("#jp-lens-jobs")
    jobs.wait_for(state="visible")
    command = lab.input_value("#jp-lens-job-command")
    assert command.startswith("python3 ") and command.endswith(script), command
    assert lab.input_value("#jp-lens-job-name") == script.removesuffix(".py")
    lab.select_option("#jp-lens-job-backend", "local")
    lab.fill("#jp-lens-job-walltime", "5m")
    jobs.get_by_role("button", name="Estimate the cost of this job").click()
    jobs.locator(".jp-lens-estimate-text").wait_for()
    jobs.get_by_role("button", name="Submit", exact=True).click()
    jobs.locator(".jp-lens-log-state").filter(has_text="SUCCEEDED").wait_for(timeout=JOB_TIMEOUT_MS)
    assert jobs.locator("pre.jp-lens-log").inner_text().strip() == "42"


def test_archive_a_folder_from_the_file_browser_then_restore_it(lab, stack, owner, artifacts):
    name, _ = owner
    run = secrets.token_hex(3)
    folder = f"data-{run}"
    token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 900}).json()["token"]
    assert contents(stack, name, token, folder, {"type": "directory"}).status_code == 201
    r = contents(stack, name, token, f"{folder}/notes.txt", {"type": "file", "format": "text",
                                                               "content": "alpha\n" * 500})
    assert r.status_code == 201, r.text

    lab.locator(".jp-DirListing-item", has_text=folder).first.wait_for(timeout=30_000)
    lab.locator(".jp-DirListing-item", has_text=folder).first.click(button="right")
    lab.locator(".lm-Menu-item", has_text="Archive…").click()
    dialog = lab.locator(".jp-Dialog")
    dialog.locator("#jp-lens-archive-class").wait_for()
    options = dialog.locator("#jp-lens-archive-class option").all_inner_texts()
    assert any(o.startswith("STANDARD — $") and "a month" in o for o in options), options
    assert any(o.startswith("DEEP_ARCHIVE — $") for o in options), options
    dialog.locator("#jp-lens-archive-tags").fill(f"run={run}")
    artifacts(lab, "lab-07-archive-dialog")
    dialog.get_by_role("button", name="Archive").click()

    archives = lab.locator("#jp-lens-archives")
    archives.wait_for(state="visible")
    row = archives.locator("table.jp-lens-archives tr", has_text=folder)
    row.wait_for(timeout=JOB_TIMEOUT_MS)
    assert "STANDARD" in row.inner_text()
    artifacts(lab, "lab-08-archives")

    row.get_by_role("button", name=f"Restore {folder}").click()
    dialog = lab.locator(".jp-Dialog")
    plan = dialog.locator("table.jp-lens-plan")
    plan.wait_for()
    assert re.search(r"1 file, .* from \d+ packs?; \d+ packs? to thaw", dialog.inner_text()), dialog.inner_text()
    assert plan.locator("tbody tr").count() >= 1
    dialog.locator("#jp-lens-restore-to").fill(f"back-{run}")
    artifacts(lab, "lab-09-restore-plan")
    dialog.get_by_role("button", name=f"Restore {folder}").click()
    archives.locator("table.jp-lens-tasks-table tr", has_text="restore").filter(has_text="done").wait_for(
        timeout=JOB_TIMEOUT_MS)
    artifacts(lab, "lab-10-restored")
    back = requests.get(f"{stack.url}/user/{name}/api/contents/back-{run}/{folder}/notes.txt",
                        headers={"Authorization": f"token {token}"}, timeout=30)
    assert back.status_code == 200 and back.json()["content"] == "alpha\n" * 500


def test_the_panel_passes_axe(lab, artifacts):
    assert AXE.is_file(), "make labextension installs axe-core (labextension/node_modules)"
    lab.locator("button.jp-lens-status").click()
    for label in ("Jobs", "Costs", "Archives", "Sharing"):
        tab(lab, label)
        lab.locator(f"#jp-lens-{label.lower()}").wait_for(state="visible")
        lab.add_script_tag(path=str(AXE))
        result = lab.evaluate("""async () => {
            const r = await axe.run(document.querySelector('#jp-lens-panel'));
            return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}));
        }""")
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not serious, json.dumps(result)
    artifacts(lab, "lab-11-archives-tab")


def test_a_second_user_sees_none_of_the_first_users_items(browser, stack, owner, lab, artifacts):
    first, _ = owner
    name, password = new_user(stack)
    try:
        context, page = open_lab(browser, stack, name, password, artifacts)
        try:
            item = status_item(page)
            assert "no budget" in item.inner_text() and "$0.00 this month" in item.inner_text()
            item.click()
            tab(page, "Jobs")
            page.locator("#jp-lens-jobs").get_by_text("No jobs yet.").wait_for()
            tab(page, "Archives")
            page.locator("#jp-lens-archives").get_by_text("No archives found.").wait_for()
            artifacts(page, "lab-12-second-user")
            # and not by asking for them either: the first user's job ids are 404 here
            token = stack.api("POST", f"/users/{name}/tokens", json={"expires_in": 600}).json()["token"]
            owner_token = stack.api("POST", f"/users/{first}/tokens", json={"expires_in": 600}).json()["token"]
            theirs = requests.get(f"{stack.url}/user/{first}/lens/api/service/jobs",
                                  headers={"Authorization": f"token {owner_token}"}, timeout=30).json()["jobs"]
            assert theirs
            for job in theirs:
                r = requests.get(f"{stack.url}/user/{name}/lens/api/service/jobs/{job['id']}",
                                 headers={"Authorization": f"token {token}"}, timeout=30)
                assert r.status_code == 404, r.text
            r = requests.get(f"{stack.url}/user/{first}/lens/api/summary",
                             headers={"Authorization": f"token {token}"}, timeout=30, allow_redirects=False)
            assert r.status_code in (302, 403), r.status_code  # not the other user's server
        finally:
            context.close()
    finally:
        remove_user(stack, name)
