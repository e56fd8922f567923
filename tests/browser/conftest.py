"""Fixtures for the browser end-to-end tests: a real lens stack and Debian's Chromium."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.browser import ARTIFACTS, chromium_browser
from tests.support.hub import PROXY_MISSING, REPO, make_stack, proxy_installed
from tests.support.unix import remove_account

_saved: list[str] = []


@pytest.fixture(scope="module")
def artifacts():
    """Where screenshots go: artifacts/browser/ at the repo root (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()

    def shot(page, name: str) -> str:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _saved.append(str(path))
        print(f"screenshot: {path}")
        return str(path)

    return shot


@pytest.fixture(scope="module")
def stack():
    # Not under pytest's 0700 temp dir: Dask clusters (and jobs) run as the users' own
    # accounts and must traverse the state directory to reach their working directories.
    yield from browser_stack(Path(tempfile.mkdtemp(prefix="lens-browser-")))


def browser_stack(root: Path, extra_env: dict | None = None):
    """The browser tests' stack in ROOT (a module's own, with EXTRA_ENV, e.g. a catalog)."""
    require(proxy_installed(), PROXY_MISSING)
    root.chmod(0o711)
    # The budget test needs the gpu profile selectable on this GPU-less machine (it is
    # refused by the budget before anything starts) and a gate of 6 minutes of a
    # profile's rate, so that $0.01 left fits lab ($0.0096) but not gpu ($0.1006).
    (root / "lens.yaml").write_text("spawner:\n  gpu_count: 1\n")
    (root / "lens_service_config.py").write_text('c.CostsSettings.gate_hours = "0.1"\n')
    # Servers load this checkout's JupyterLab extension build (`make labextension`), as
    # they run its Python code (PYTHONPATH), whatever the venv holds. World-readable:
    # each user's server runs as that user.
    jupyter_path = Path(tempfile.mkdtemp(prefix="lens-jupyter-path-"))
    jupyter_path.chmod(0o755)
    (jupyter_path / "labextensions").mkdir(mode=0o755)
    (jupyter_path / "labextensions/jupyterlab-lens").symlink_to(REPO / "jupyter_ext/labextension")
    hub = make_stack(root / "state", {"LENS_CONFIG": str(root / "lens.yaml"),
                                      "LENS_SERVICE_CONFIG": str(root / "lens_service_config.py"),
                                      "JUPYTER_PATH": str(jupyter_path), **(extra_env or {})})
    hub.start(timeout=90)
    yield hub
    hub.stop()
    shutil.rmtree(jupyter_path, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def account(stack):
    """A fresh password account (and, as root, its unix account is removed afterwards)."""
    name = f"web-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    stack.add_account(name, password)
    yield name, password
    if stack.api("GET", f"/users/{name}").json().get("servers"):
        stack.stop_server(name)
    if os.geteuid() == 0:
        remove_account(f"jupyter-{name}")


def pytest_terminal_summary(terminalreporter):
    if _saved:
        terminalreporter.write_sep("-", f"browser screenshots in {ARTIFACTS}")
        for path in _saved:
            terminalreporter.write_line(path)
