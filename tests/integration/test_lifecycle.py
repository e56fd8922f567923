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


# --- stop means stop: nothing of the stack survives Ctrl-C, SIGTERM or SIGINT ---------------
def stack_processes(state) -> dict[int, str]:
    """Every process that belongs to this stack, found without trusting the launcher:
    its command line, environment or working directory names the state directory."""
    needle = str(state).encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            env = open(f"/proc/{pid}/environ", "rb").read()
            cwd = os.readlink(f"/proc/{pid}/cwd").encode()
        except OSError:
            continue
        if (needle in cmd or needle in env or needle in cwd) and _alive(pid):
            found[pid] = cmd.replace(b"\0", b" ").decode(errors="replace")
    return found


@pytest.mark.parametrize("how", ["ctrl-c-process-group", "sigterm-launcher", "sigint-launcher"])
def test_stop_leaves_nothing_of_the_stack_running(how):
    import shutil
    import tempfile
    from pathlib import Path

    from tests.support.hub import REPO

    chp = REPO / ".cache/npm/node_modules/.bin/configurable-http-proxy"
    require(chp.exists(), "configurable-http-proxy (npm) is not installed: run `make proxy`")
    # Not under pytest's 0700 temp dir: servers and clusters run as the users' accounts.
    root = Path(tempfile.mkdtemp(prefix="lens-stop-"))
    root.chmod(0o711)
    hub = make_stack(root / "state")
    hub.new_session = True
    hub.start()
    try:
        token = hub.create_user(f"stop-{how[:5]}")
        hub.spawn(f"stop-{how[:5]}", "lab")
        cluster = None
        if how == "ctrl-c-process-group":  # a Dask cluster too: its scheduler and worker
            from tests.integration.test_gateway import gateway_for

            gateway = gateway_for(hub, token)
            cluster = gateway.new_cluster(shutdown_on_close=False)
            cluster.scale(1)
            client = cluster.get_client()
            client.wait_for_workers(1, timeout=120)
            client.close()
            cluster.close()  # this client only: the cluster keeps running
            gateway.close()
        procs = stack_processes(hub.state)
        cmds = " ".join(procs.values())
        expected = ["jupyterhub", "configurable-http-proxy", "jupyter_ext.service", "jupyterhub_idle_culler",
                    "dask_gateway_server", "dask-gateway-proxy", "lens-singleuser"]
        if cluster is not None:
            expected += ["scheduler", "worker"]
        missing = [name for name in expected if name not in cmds]
        assert not missing, (missing, procs)

        t0 = time.monotonic()
        if how == "ctrl-c-process-group":
            os.killpg(hub.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            hub.proc.send_signal(signal.SIGTERM if how == "sigterm-launcher" else signal.SIGINT)
        while stack_processes(hub.state) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        left = stack_processes(hub.state)
        assert not left, left
        hub.proc.wait(5)
    finally:
        hub.stop()
        for pid in stack_processes(hub.state):
            with __import__("contextlib").suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def test_a_taken_port_stops_the_start_and_names_the_holder(tmp_path):
    import socket
    import subprocess

    from tests.support.hub import REPO

    chp = REPO / ".cache/npm/node_modules/.bin/configurable-http-proxy"
    require(chp.exists(), "configurable-http-proxy (npm) is not installed: run `make proxy`")
    hub = make_stack(tmp_path / "state")
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", int(hub.env["LENS_LENS_SERVICE_PORT"])))
    squatter.listen()
    try:
        with pytest.raises(RuntimeError, match="exited early"):
            hub.start(timeout=60)
        assert hub.proc.wait(5) == 2
        log = hub.log_path.read_text()
        port = hub.env["LENS_LENS_SERVICE_PORT"]
        assert f"port {port} (lens service) is in use by pid {os.getpid()}" in log, log
        assert not (hub.state / "hub.pid").exists()  # no hub ran without its lens service
        r = subprocess.run(["pgrep", "-f", str(hub.state)], capture_output=True, text=True)
        assert r.stdout.strip() == ""
    finally:
        squatter.close()
        hub.stop()
