"""Real processes for the Dask tests and benchmark: a JupyterHub (NullProxy),
dask-gateway-server with lens's config, throwaway unix accounts, and a tiny
budget HTTP server standing in for the lens service's budget route."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
GATEWAY_CONFIG = os.path.join(ROOT, "hub_config", "dask_gateway_config.py")
SERVICE_SCOPE = "access:services!service=dask-gateway"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code in ok:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout}s")
        time.sleep(0.1)


def stop_proc(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM the leader only (it stops its clusters), then SIGKILL its group if needed."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


# --- unix accounts ---------------------------------------------------------------
@contextmanager
def unix_users(names: list[str]):
    """Create throwaway accounts (with homes) and remove them afterwards."""
    made = []
    try:
        for name in names:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True)
            made.append(name)
        yield made
    finally:
        for name in made:
            subprocess.run(["pkill", "-KILL", "-u", name], check=False)
            time.sleep(0.2)
            subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


# --- budget server ---------------------------------------------------------------------
class BudgetServer:
    """GET /api/budget/check?user=&category= -> allowed unless the user is in ``refused``."""

    def __init__(self):
        self.refused: set[str] = set()
        self.calls: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.calls.append({"path": url.path, **q, "auth": self.headers.get("Authorization", "")})
                if url.path == "/services/lens/api/budget/check":
                    user = q.get("user", "")
                    refused = user in outer.refused
                    body = {
                        "allowed": not refused,
                        "message": "budget 100% used ($50.00 of $50.00)" if refused else "ok",
                        "remaining_usd": 0.0 if refused else 42.5,
                    }
                    data = json.dumps(body).encode()
                    self.send_response(200)
                else:
                    data = b'{"error": "not found"}'
                    self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/services/lens/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- JupyterHub --------------------------------------------------------------------------
HUB_CONFIG = """
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.proxy_class = "tests.dask.nullproxy.NullProxy"
c.JupyterHub.db_url = "sqlite:///{state}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.pid_file = "{state}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.services = [
    {{"name": "dask-gateway", "api_token": "{gateway_token}", "url": "http://127.0.0.1:{gateway_port}"}},
    {{"name": "lens-test-admin", "api_token": "{admin_token}"}},
]
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "{scope}"]}},
    {{"name": "lens-test-admin", "scopes": ["admin:users", "tokens", "{scope}"], "services": ["lens-test-admin"]}},
]
"""


class Hub:
    def __init__(self, state: str, gateway_port: int):
        self.state = state
        self.port = free_port()
        self.hub_port = free_port()
        self.gateway_token = secrets.token_hex(16)
        self.admin_token = secrets.token_hex(16)
        self.gateway_port = gateway_port
        self.api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        self.proc = None

    def start(self):
        os.makedirs(self.state, exist_ok=True)
        path = os.path.join(self.state, "jupyterhub_config.py")
        with open(path, "w") as f:
            f.write(
                HUB_CONFIG.format(
                    port=self.port,
                    hub_port=self.hub_port,
                    state=self.state,
                    gateway_token=self.gateway_token,
                    admin_token=self.admin_token,
                    gateway_port=self.gateway_port,
                    scope=SERVICE_SCOPE,
                )
            )
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.log = open(os.path.join(self.state, "hub.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "jupyterhub"), "-f", path],
            cwd=self.state,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.api_url}/", self.proc, timeout=90)
        return self

    def stop(self):
        if self.proc:
            stop_proc(self.proc)
            self.log.close()

    def _admin(self, method, path, **kw):
        r = requests.request(
            method, f"{self.api_url}{path}", headers={"Authorization": f"token {self.admin_token}"}, timeout=30, **kw
        )
        r.raise_for_status()
        return r.json() if r.content else None

    def create_user(self, name: str):
        r = requests.post(
            f"{self.api_url}/users/{name}", headers={"Authorization": f"token {self.admin_token}"}, timeout=30
        )
        if r.status_code not in (201, 409):
            r.raise_for_status()

    def token(self, name: str, scopes: list[str] | None = None) -> str:
        body = {"note": "lens dask test", "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        return self._admin("POST", f"/users/{name}/tokens", json=body)["token"]


# --- dask-gateway-server ---------------------------------------------------------------------
class GatewayProc:
    """dask-gateway-server with hub_config/dask_gateway_config.py (or a bare config)."""

    def __init__(self, state: str, *, env: dict | None = None, extra_config: str = "", config_file: str | None = None, port: int | None = None):
        self.state = state
        self.port = port or free_port()
        self.proxy_port = free_port()
        self.prefix = "/services/dask-gateway"
        self.env = env or {}
        self.extra_config = extra_config
        self.config_file = config_file or GATEWAY_CONFIG
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def proxy_address(self):
        return f"gateway://127.0.0.1:{self.proxy_port}"

    def start(self, timeout: float = 60):
        os.makedirs(self.state, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": ROOT,
                "LENS_STATE_DIR": self.state,
                "LENS_GATEWAY_PORT": str(self.port),
                "LENS_GATEWAY_PROXY_PORT": str(self.proxy_port),
                "JUPYTERHUB_SERVICE_PREFIX": self.prefix + "/",
                "JUPYTERHUB_SERVICE_NAME": "dask-gateway",
            }
        )
        env.update(self.env)
        if self.extra_config:
            path = os.path.join(self.state, "extra_gateway_config.py")
            with open(path, "w") as f:
                f.write("c = get_config()\n" + self.extra_config)
            env["LENS_GATEWAY_EXTRA_CONFIG"] = path
        self.log_path = os.path.join(self.state, "gateway.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "dask-gateway-server"), "-f", self.config_file],
            cwd=self.state,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(f"{self.url}/api/health", self.proc, timeout=timeout)
        return self

    def stop(self):
        if self.proc:
            stop_proc(self.proc, timeout=40)
            self.log.close()

    def client_env(self, token: str) -> dict:
        """What a user server sees: the zero-config environment plus its hub token."""
        return {
            "DASK_GATEWAY__ADDRESS": self.url,
            "DASK_GATEWAY__PROXY_ADDRESS": self.proxy_address,
            "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
            "JUPYTERHUB_API_TOKEN": token,
        }


def have_root() -> bool:
    return os.geteuid() == 0 and shutil.which("useradd") is not None
