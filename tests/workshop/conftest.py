import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import require
from tests.support.hub import PROXY_MISSING, REPO, make_stack, proxy_installed

LENS_MAIN = "import sys; from jupyter_ext.cli.main import main; sys.exit(main(sys.argv[1:]))"
CHP = REPO / ".cache/npm/node_modules/.bin/configurable-http-proxy"


@pytest.fixture(scope="package")
def wstack(tmp_path_factory):

    require(proxy_installed(), PROXY_MISSING)
    hub = make_stack(tmp_path_factory.mktemp("ws-stack"), {"LENS_WORKSHOP_EXPIRY_EVERY": "2"})
    hub.start()
    yield hub
    hub.stop()


def lens(stack, *args, check=True) -> subprocess.CompletedProcess:
    # Like the `lens` console script (python -m jupyter_ext.cli.main runs cli.py as __main__,
    # whose CommandError is not the one commands raise).
    argv = [sys.executable, "-c", LENS_MAIN, "workshop", "--state", str(stack.state),
            "--hub-url", stack.url, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=stack.env, cwd=REPO, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"lens workshop {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def sheet(stack, name) -> dict[str, str]:
    import csv

    path = Path(stack.state) / "workshops" / name / "credentials.csv"
    return {r["username"]: r["password"] for r in csv.DictReader(path.open())}


def try_login(stack, name, password) -> requests.Response:
    s = requests.Session()
    s.get(f"{stack.url}/hub/login", timeout=10)
    return s.post(f"{stack.url}/hub/login", data={"username": name, "password": password,
                                                  "_xsrf": s.cookies.get("_xsrf", "")},
                  allow_redirects=False, timeout=30)


def restart(stack) -> None:
    stack.stop()
    stack.start(admin_login=False)


def fresh_seats(*names: str) -> None:
    """Remove the unix accounts (and homes) an earlier run of these tests left
    for these seats, so a clone from a dead test server is not reused."""
    import os
    import pwd

    if os.geteuid() != 0:
        return
    for name in names:
        try:
            pwd.getpwnam(f"jupyter-{name}")
        except KeyError:
            continue
        subprocess.run(["userdel", "-r", f"jupyter-{name}"], capture_output=True)
