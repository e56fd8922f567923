"""The desktop profile on the real local stack: its VNC websocket is the owner's only,
and its use is activity the idle culler sees (docs/desktop.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import require
from tests.support.desktop import DESKTOP_MISSING, RFBClient, desktop_installed, websocket_url
from tests.support.hub import PROXY_MISSING, REPO, make_stack, proxy_installed

pytestmark = pytest.mark.integration
IDLE_TIMEOUT = 12  # the desktop profile's, in this module's catalog
CULL_EVERY = 2
ACTIVITY_INTERVAL = 2


@pytest.fixture(scope="module")
def desktop_stack():
    """A stack whose culler acts within seconds: desktop idle_timeout 12 s, culler every 2 s,
    activity reported every 2 s (culler.activity_interval)."""
    require(proxy_installed(), PROXY_MISSING)
    require(desktop_installed(), DESKTOP_MISSING)
    root = Path(tempfile.mkdtemp(prefix="lens-desktop-"))
    root.chmod(0o711)
    catalog = yaml.safe_load((REPO / "hub_config/profiles.yaml").read_text())
    for profile in catalog["profiles"]:
        if profile["slug"] == "desktop":
            profile["idle_timeout"] = IDLE_TIMEOUT
    (root / "profiles.yaml").write_text(yaml.safe_dump(catalog))
    (root / "lens.yaml").write_text(yaml.safe_dump(
        {"culler": {"every": CULL_EVERY, "activity_interval": ACTIVITY_INTERVAL}}))
    hub = make_stack(root / "state", {"LENS_CONFIG": str(root / "lens.yaml"),
                                      "LENS_PROFILES": str(root / "profiles.yaml")})
    hub.start()
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


def server_model(stack, name: str) -> dict | None:
    return stack.api("GET", f"/users/{name}").json().get("servers", {}).get("")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_the_vnc_websocket_is_the_owners_only(desktop_stack):
    import websocket

    stack = desktop_stack
    owner = stack.create_user("dt-owner")
    other = stack.create_user("dt-other")
    r = stack.spawn("dt-owner", "desktop", token=owner)
    assert r.status_code in (201, 202), r.text
    try:
        assert server_model(stack, "dt-owner")["url"]
        url = websocket_url(stack, "dt-owner")
        for token in (None, other):
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                RFBClient(url, token)
            assert refused.value.status_code in (302, 401, 403), refused.value
        # the page around it too: another user's token gets 403, never the desktop
        page = requests.get(f"{stack.url}/user/dt-owner/desktop/", timeout=30,
                            headers={"Authorization": f"token {other}"}, allow_redirects=False)
        assert page.status_code == 403, page.status_code
        # JupyterLab's launcher offers the desktop here (its programs are installed)
        info = requests.get(f"{stack.url}/user/dt-owner/server-proxy/servers-info", timeout=30,
                            headers={"Authorization": f"token {owner}"})
        assert info.status_code == 200, info.text
        entries = {s["name"]: s for s in info.json()["server_processes"]}
        assert entries["desktop-websockify"]["launcher_entry"]["title"] == "Desktop"
        client = RFBClient(url, owner)
        try:
            width, height = client.handshake()  # Xvnc started on first connect; XFCE inside
            assert (width, height) == (1680, 1050)
        finally:
            client.close()
        if os.geteuid() == 0:  # the X server runs as the owner's own account
            ps = subprocess.run(["ps", "-o", "user=", "-C", "Xtigervnc"], capture_output=True, text=True)
            assert "jupyter-dt-owner" in ps.stdout.split(), ps.stdout
    finally:
        stack.stop_server("dt-owner")
    if os.geteuid() == 0:  # stopping the server ends its desktop (spawners/local.py end_leftovers)
        assert not wait_for_no_processes("jupyter-dt-owner")


def test_desktop_use_is_activity_and_an_idle_desktop_is_culled(desktop_stack):
    """Input through the VNC websocket keeps the desktop past its idle timeout (the
    server's last_activity, which it reports to the hub, and the hub's, which the culler
    reads); once it stops, the culler stops the server."""
    stack = desktop_stack
    name = "dt-active"
    token = stack.create_user(name)
    r = stack.spawn(name, "desktop", token=token)
    assert r.status_code in (201, 202), r.text
    auth = {"Authorization": f"token {token}"}
    status_url = f"{stack.url}/user/{name}/api/status"  # not itself counted as activity
    client = RFBClient(websocket_url(stack, name), token)
    try:
        client.handshake()
        before = parse(requests.get(status_url, headers=auth, timeout=30).json()["last_activity"])
        started = time.monotonic()
        x = 0
        # Move the pointer every 2 s for longer than the idle timeout plus a cull period.
        while time.monotonic() - started < IDLE_TIMEOUT + 3 * CULL_EVERY:
            x = (x + 7) % 1000
            client.pointer(x, 300)
            time.sleep(2)  # the pace of the "user", not a wait for a condition
            assert server_model(stack, name), "a desktop in use was culled"
        seen = parse(requests.get(status_url, headers=auth, timeout=30).json()["last_activity"])
        assert seen > before, (before, seen)
        hub_seen = parse(server_model(stack, name)["last_activity"])
        assert (seen - hub_seen).total_seconds() < 3 * ACTIVITY_INTERVAL + 2, (seen, hub_seen)
    finally:
        client.close()
    t0 = time.monotonic()
    deadline = t0 + IDLE_TIMEOUT + 4 * CULL_EVERY + 2 * ACTIVITY_INTERVAL + 30
    while server_model(stack, name) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert server_model(stack, name) is None, "the idle desktop was not culled"
    print(f"culled {time.monotonic() - t0:.1f} s after the last input (idle_timeout {IDLE_TIMEOUT} s)")
    # its running time was metered like any server's, at the profile's rate
    deadline = time.monotonic() + 20
    while True:
        report = requests.get(f"{stack.url}/services/lens/api/costs", headers=auth, timeout=30).json()
        if report["by_category"].get("servers", 0) > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert report["by_category"].get("servers", 0) > 0, report
    if os.geteuid() == 0:  # the desktop's processes went with the server
        assert not wait_for_no_processes(f"jupyter-{name}")


def wait_for_no_processes(user: str, seconds: float = 15) -> list[str]:
    """What USER still runs after SECONDS (dbus-launch's babysitter, in a session of its
    own, may outlive the server's stop by a moment: it exits when its X server is gone)."""
    deadline = time.monotonic() + seconds
    while (left := left_processes(user)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return left


def left_processes(user: str) -> list[str]:
    ps = subprocess.run(["ps", "-o", "pid=,comm=", "-u", user], capture_output=True, text=True)
    return ps.stdout.split("\n") if ps.stdout.strip() else []
