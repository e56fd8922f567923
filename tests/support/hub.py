"""A real local lens stack (`lens hub run`) for integration tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .moto import free_port

REPO = Path(__file__).resolve().parents[2]
PROXY_MISSING = "configurable-http-proxy (npm) is not installed: run `make proxy`"


def proxy_installed() -> bool:
    """configurable-http-proxy on PATH or from `make proxy` (every stack needs it)."""
    import shutil

    return shutil.which("configurable-http-proxy") is not None \
        or (REPO / ".cache/npm/node_modules/.bin/configurable-http-proxy").exists()
ADMIN_PASSWORD = "admin-test-password"


@dataclass
class HubStack:
    state: Path
    url: str
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    admin_token: str = ""
    env: dict = field(default_factory=dict)
    python: str = sys.executable  # the venv whose lens runs the stack
    cwd: Path = REPO
    new_session: bool = False  # the launcher in a session of its own (to Ctrl-C its process group)

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 120, admin_login: bool = True) -> HubStack:
        self.state.mkdir(parents=True, exist_ok=True)
        self.log_path = self.state / "stack.log"
        # private, like everything in the state directory (only the hub's account reads it)
        log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.proc = subprocess.Popen(
            [self.python, "-m", "jupyter_ext.cli.main", "hub", "run", "--state", str(self.state), "--bind-url", self.url],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            start_new_session=self.new_session,
        )
        self.wait_ready(timeout)
        if admin_login and not self.admin_token:
            self.admin_token = self.login_token("admin", ADMIN_PASSWORD)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"lens hub exited early:\n{self.tail()}")
            try:
                r = requests.get(f"{self.url}/hub/api/", timeout=2)
                if r.status_code == 200:
                    # services come up just after the hub
                    r = requests.get(f"{self.url}/services/lens/api/health", timeout=2)
                    if r.status_code in (200, 403):
                        return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"lens hub not ready after {timeout}s:\n{self.tail()}")

    def stop(self, timeout: float = 15) -> float:
        """Ctrl-C the launcher; return how long everything took to stop."""
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0

    def hub_pid(self) -> int:
        return int((self.state / "hub.pid").read_text())

    def tail(self, n: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        # Drop the readiness poll's own noise so the cause stays visible.
        lines = [
            line for line in self.log_path.read_text(errors="replace").splitlines()
            if "/hub/api/" not in line and "xsrf" not in line and "/hub/error/404" not in line
        ]
        return "\n".join(lines[-n:])

    # -- REST helpers ----------------------------------------------------------
    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {token or self.admin_token}"
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers, **kwargs)

    def login_session(self, name: str, password: str) -> requests.Session:
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=10)
        r = s.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": password, "_xsrf": s.cookies.get("_xsrf", "")},
            allow_redirects=False,
            timeout=30,
        )
        if r.status_code != 302:
            raise RuntimeError(f"login of {name} failed: {r.status_code}")
        return s

    def login_token(self, name: str, password: str) -> str:
        s = self.login_session(name, password)
        r = s.post(
            f"{self.url}/hub/api/users/{name}/tokens",
            json={"note": "tests", "expires_in": 3600},
            headers={"X-XSRFToken": s.cookies.get("_xsrf", "")},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["token"]

    def add_account(self, name: str, password: str, admin: bool = False) -> None:
        argv = [self.python, "-m", "jupyter_ext.cli.main", "users", "--state", str(self.state), "add", name,
                "--password-stdin"]
        if admin:
            argv.append("--admin")
        subprocess.run(argv, check=True, capture_output=True, env=self.env, input=password + "\n", text=True)

    def lens(self, *args: str) -> subprocess.CompletedProcess:
        """The `lens` CLI of this stack's venv, on its state directory (no LENS_DB_URL)."""
        env = {k: v for k, v in self.env.items() if k != "LENS_DB_URL"}
        env["LENS_STATE_DIR"] = str(self.state)
        return subprocess.run([self.python, "-m", "jupyter_ext.cli.main", *args], capture_output=True,
                              text=True, env=env, timeout=120, check=True)

    def create_user(self, name: str, groups: list[str] | None = None) -> str:
        """Create a hub user (and groups) over REST; return a token for that user."""
        r = self.api("POST", f"/users/{name}")
        assert r.status_code in (201, 409), r.text
        for group in groups or []:
            self.api("POST", f"/groups/{group}")
            r = self.api("POST", f"/groups/{group}/users", json={"users": [name]})
            assert r.status_code == 200, r.text
        r = self.api("POST", f"/users/{name}/tokens", json={"note": "tests", "expires_in": 3600})
        assert r.status_code in (200, 201), r.text
        return r.json()["token"]

    def spawn(self, name: str, profile: str, token: str | None = None, timeout: float = 90) -> requests.Response:
        r = self.api("POST", f"/users/{name}/server", token=token, json={"profile": profile})
        if r.status_code not in (201, 202):
            return r
        self.wait_server(name, timeout)
        return r

    def wait_server(self, name: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{name}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            if not server or not server.get("pending"):
                if not server:
                    raise RuntimeError(f"server of {name} failed to start:\n{self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"server of {name} not ready after {timeout}s:\n{self.tail()}")

    def stop_server(self, name: str, timeout: float = 60) -> None:
        r = self.api("DELETE", f"/users/{name}/server")
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{name}").json()
            if not model.get("servers"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"server of {name} did not stop")


def make_stack(state: Path, extra_env: dict | None = None, python: str = sys.executable,
               cwd: Path = REPO) -> HubStack:
    """A stack on free ports; PYTHON's venv runs it (the test venv, or an installed one)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        LENS_STATE_DIR=str(state),
        LENS_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LENS_PROXY_API_PORT=str(free_port()),
        LENS_HUB_PORT=str(free_port()),
        LENS_LENS_SERVICE_PORT=str(free_port()),
        LENS_GATEWAY_PORT=str(free_port()),
        LENS_GATEWAY_PROXY_PORT=str(free_port()),
        PATH=os.pathsep.join([str(Path(python).parent), str(REPO / ".cache/npm/node_modules/.bin"),
                              env.get("PATH", "")]),
    )
    env.setdefault("LENS_CODE_SERVER_PREFIX", str(REPO / ".cache" / "code-server"))
    if python == sys.executable:
        # servers read this checkout's jupyter-config (which server extensions are on), as
        # they run its code (PYTHONPATH); the venv holds the copy of its last install
        env.setdefault("JUPYTER_CONFIG_PATH", str(REPO / "jupyter-config"))
    env.update(extra_env or {})
    return HubStack(state=state, url=f"http://127.0.0.1:{port}", env=env, python=python, cwd=cwd)
