"""A vanilla JupyterHub (nothing of lens) as a side-by-side peer for benchmarks.

Same proxy (configurable-http-proxy from npm), same single-user server venv,
loopback on free ports, and the same spawn sizing as lens's hub_config
(start_timeout 120, http_timeout 60, concurrent_spawn_limit 20). Stock
components only: the chosen spawner (``simple`` or ``localprocess``) and
JupyterHub's ``SharedPasswordAuthenticator``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from .hub import REPO, HubStack
from .moto import free_port

CHP = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
SPAWN_SIZING = {"start_timeout": 120, "http_timeout": 60, "concurrent_spawn_limit": 20}
# What a new operator of a vanilla JupyterHub gets (JupyterHub 6.1's own defaults).
JUPYTERHUB_DEFAULTS = {"start_timeout": 60, "http_timeout": 30, "concurrent_spawn_limit": 100}

CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = {bind_url!r}
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.ConfigurableHTTPProxy.pid_file = "{state}/proxy.pid"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.concurrent_spawn_limit = {concurrent_spawn_limit}
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {http_timeout}
c.JupyterHub.spawner_class = {spawner!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "bench", "api_token": {service_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "bench-admin",
    "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
    "services": ["bench"],
}}]
"""


class VanillaHub(HubStack):
    """JupyterHub with a stock spawner; REST helpers come from HubStack."""

    spawner: str = "simple"
    password: str = ""
    sizing: dict | None = None  # None: SPAWN_SIZING (lens's spawn timeouts)

    def start(self, timeout: float = 60) -> VanillaHub:
        self.state.mkdir(parents=True, exist_ok=True)
        config = self.state / "jupyterhub_config.py"
        root = os.geteuid() == 0
        config.write_text(
            textwrap.dedent(
                CONFIG.format(
                    bind_url=self.url,
                    hub_port=free_port(),
                    proxy_api_port=free_port(),
                    state=self.state,
                    proxy_token=secrets.token_hex(16),
                    chp=str(CHP),
                    spawner=self.spawner,
                    singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
                    args=["--allow-root"] if root and self.spawner == "simple" else [],
                    password=self.password,
                    service_token=self.admin_token,
                    **(self.sizing or SPAWN_SIZING),
                )
            )
        )
        self.log_path = self.state / "hub.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        env = dict(self.env or os.environ)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)],
            cwd=self.state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        import time

        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vanilla hub exited early:\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"vanilla hub not ready after {timeout}s:\n{self.tail()}")

    def stop(self, timeout: float = 30) -> float:
        import time

        if not self.proc or self.proc.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)  # cleanup_servers (default) stops user servers
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return time.monotonic() - t0

    def hub_pid(self) -> int:
        return self.proc.pid


def make_vanilla(state: Path, spawner: str = "simple", password: str | None = None,
                 sizing: dict | None = None) -> VanillaHub:
    hub = VanillaHub(state=state, url=f"http://127.0.0.1:{free_port()}", admin_token=secrets.token_hex(24))
    hub.spawner = spawner
    hub.sizing = sizing
    hub.password = password or secrets.token_urlsafe(12)
    return hub
