"""`make hub`'s launcher: Ctrl-C stops everything in 10 s; restarts keep servers and state."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.conftest import require
from tests.support.hub import make_stack

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def own_stack(tmp_path):
    from pathlib import Path

    chp = Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/.bin/configurable-http-proxy"
    require(chp.exists(), "configurable-http-proxy (npm) is not installed: run `make proxy`")
    hub = make_stack(tmp_path / "state")
    yield hub
    hub.stop()


def test_server_survives_hub_restart_and_state_is_reused(own_stack):
    hub = own_stack.start()
    secrets_before = {p.name: p.read_text() for p in (hub.state / "secrets").iterdir()}
    for p in (hub.state / "secrets").iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p
    token = hub.create_user("survivor")
    hub.spawn("survivor", "lab")
    pid_before = int(hub.api("GET", "/users/survivor").json()["servers"][""]["state"]["pid"])

    # Kill only the hub process: the launcher exits and leaves user servers alone.
    os.kill(hub.hub_pid(), signal.SIGTERM)
    hub.proc.wait(90)
    assert _alive(pid_before)

    # Second run: same state, nothing created twice, the server is still there.
    hub.start()
    log = hub.log_path.read_text()
    assert log.count("created the admin account") == 1
    assert {p.name: p.read_text() for p in (hub.state / "secrets").iterdir()} == secrets_before
    model = hub.api("GET", "/users/survivor").json()
    assert model["servers"][""]["ready"]
    assert int(model["servers"][""]["state"]["pid"]) == pid_before
    r = requests.get(f"{hub.url}/user/survivor/api/status", headers={"Authorization": f"token {token}"}, timeout=20)
    assert r.status_code == 200

    # Ctrl-C stops the hub, services, proxy and user servers within 10 s.
    pids = [pid_before, hub.hub_pid()]
    proxy_pid = int((hub.state / "proxy.pid").read_text())
    pids.append(proxy_pid)
    took = hub.stop()
    assert took < 10, took
    deadline = time.monotonic() + (10 - took)  # what is left of the 10 s for the last exits
    while [p for p in pids if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{hub.url}/hub/api/", timeout=2)
