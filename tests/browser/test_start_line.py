"""A class presses Start together: starts beyond the machine's capacity wait in a
first-come line, see their place and an estimate (REST progress events and the
spawn page in Chromium), and all of them start: no 429, no "never showed up".

The hub runs with ``start_capacity: 3`` (one lab start at a time), so a line
forms with only a few users.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.browser.test_e2e import log_in
from tests.conftest import require
from tests.support.hub import PROXY_MISSING, make_stack, proxy_installed
from tests.support.unix import remove_account

pytestmark = pytest.mark.browser
USERS = ("line-a", "line-b", "line-c", "line-d")
WAIT_RE = re.compile(r"Waiting for a start slot: (\d+) of (\d+), about (\d+ (?:s|min))")


@pytest.fixture(scope="module")
def stack():
    require(proxy_installed(), PROXY_MISSING)
    root = Path(tempfile.mkdtemp(prefix="lens-line-"))
    root.chmod(0o711)
    config = root / "lens.yaml"
    config.write_text("spawner:\n  start_capacity: 3\n")
    hub = make_stack(root / "state", extra_env={"LENS_CONFIG": str(config)})
    hub.start()
    yield hub
    hub.stop()
    for name in USERS:
        remove_account(f"jupyter-{name}")
    shutil.rmtree(root, ignore_errors=True)


def progress_messages(stack, name: str, token: str, out: list) -> None:
    """Follow the REST progress event stream to its end, as the spawn page does."""
    import requests

    with requests.get(f"{stack.url}/hub/api/users/{name}/server/progress",
                      headers={"Authorization": f"token {token}"}, stream=True, timeout=180) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                out.append(json.loads(line[5:]))


def test_a_burst_waits_in_line_and_everyone_starts(stack):
    tokens = {name: stack.create_user(name) for name in USERS}
    events = {name: [] for name in USERS}
    statuses = {}
    try:
        def request(name):
            statuses[name] = stack.api("POST", f"/users/{name}/server", json={"profile": "lab"}).status_code

        posts = []
        for name in USERS:  # a burst, in a known order: a first-come line
            posts.append(threading.Thread(target=request, args=(name,)))
            posts[-1].start()
            time.sleep(0.3)
        readers = [threading.Thread(target=progress_messages, args=(stack, n, tokens[n], events[n]))
                   for n in USERS]
        for t in readers:
            t.start()
        ready_at = {}
        deadline = time.monotonic() + 240
        while len(ready_at) < len(USERS) and time.monotonic() < deadline:
            for name in USERS:
                server = stack.api("GET", f"/users/{name}").json().get("servers", {}).get("")
                assert server, f"{name}'s start failed:\n{stack.tail()}"
                if server.get("ready") and name not in ready_at:
                    ready_at[name] = time.monotonic()
            time.sleep(0.2)
        for t in [*posts, *readers]:
            t.join(timeout=60)
        assert all(code in (201, 202) for code in statuses.values()), statuses  # never 429
        assert sorted(ready_at) == sorted(USERS), f"not all ready: {ready_at}\n{stack.tail()}"
        last = [e.get("message", "") for e in events[USERS[-1]]]
        waits = [WAIT_RE.search(m) for m in last if WAIT_RE.search(m)]
        # The place in line is a live progress event: a reader that connects (after the
        # burst) once the start has its slot sees none. The hub's log has it either way.
        logged = re.findall(rf"Start of {USERS[-1]} waits for a slot: (\d+) of (\d+)",
                            stack.log_path.read_text(errors="replace"))
        assert waits or logged, (last, stack.tail())
        first = (waits[0].group(1), waits[0].group(2)) if waits else logged[0]
        position, waiting = int(first[0]), int(first[1])
        assert 1 <= position <= waiting <= len(USERS) - 1
        # the place only improves while waiting
        positions = [int(m.group(1)) for m in waits]
        assert positions == sorted(positions, reverse=True)
        assert events[USERS[-1]][-1].get("ready") is True
        # first come, first served: the first request is ready before the last one
        assert ready_at[USERS[0]] < ready_at[USERS[-1]]
    finally:
        for name in USERS:
            stack.api("DELETE", f"/users/{name}/server")


def test_the_spawn_page_shows_the_place_in_line(stack, browser, tmp_path):
    ahead, person = ("line-a", "line-b", "line-d"), "line-c"
    stack.add_account(person, "line-pass-123456")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
            stack.api("GET", f"/users/{n}").json().get("servers") for n in USERS):
        time.sleep(0.3)
    ctx = browser.new_context(base_url=stack.url)
    ctx.set_default_timeout(120_000)
    page = ctx.new_page()
    posts = [threading.Thread(target=stack.api, args=("POST", f"/users/{n}/server"),
                              kwargs={"json": {"profile": "lab"}}) for n in ahead]
    try:
        log_in(page, person, "line-pass-123456", lambda *a: None)
        page.goto("/hub/spawn")
        page.wait_for_selector("form#spawn_form .lens-profiles")
        for t in posts:  # three starts ahead of the person: they wait behind them
            t.start()
            time.sleep(0.2)
        page.click('form#spawn_form button[type="submit"]')
        page.wait_for_url(re.compile(r"/hub/spawn-pending/"))
        message = page.locator("#progress-message")
        message.filter(has_text=WAIT_RE).wait_for(timeout=60_000)
        seen = message.inner_text()
        page.screenshot(path=str(tmp_path / "line.png"))
        artifacts = Path(__file__).resolve().parents[2] / "artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "line.png", artifacts / "start-line.png")
        assert WAIT_RE.search(seen), seen
        page.wait_for_url(re.compile(rf"/user/{person}/lab"), timeout=180_000)
    finally:
        ctx.close()
        for t in posts:
            t.join(timeout=60)
        for name in USERS:
            stack.api("DELETE", f"/users/{name}/server")
