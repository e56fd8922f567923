"""Installed is tested: the wheel `make test` builds, installed (not editable) in
a venv outside the checkout, runs the whole stack with no source tree on its
path. `make test` sets LENS_INSTALLED_PYTHON to that venv's python.

One walk through what a user does: log in, start JupyterLab, then in a real
kernel of that server submit a job, read the costs, archive and restore, and
run a one-worker Dask cluster.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.hub import PROXY_MISSING, REPO, make_stack, proxy_installed
from tests.support.kernel import RemoteKernel

pytestmark = pytest.mark.integration
INSTALLED_PYTHON = os.environ.get("LENS_INSTALLED_PYTHON", "")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed():
    require(bool(INSTALLED_PYTHON) and Path(INSTALLED_PYTHON).exists(),
            "no installed lens venv: `make test` builds one (LENS_INSTALLED_PYTHON)")
    venv = Path(INSTALLED_PYTHON).parent.parent
    assert not venv.resolve().is_relative_to(REPO), "the installed venv must live outside the checkout"
    return Path(INSTALLED_PYTHON)


def test_the_installed_packages_come_from_the_wheel(installed):
    code = ("import sys, jupyter_ext, spawners, hub_config, jupyter_ext.paths as p; "
            "print(jupyter_ext.__file__); print(spawners.__file__); print(p.config_file('profiles.yaml')); "
            "print(p.config_file('atom_apps.yaml')); print(p.config_file('jupyterhub_config.py')); print(sys.path)")
    out = subprocess.run([str(installed), "-c", code], capture_output=True, text=True, check=True,
                         cwd="/", env=CLEAN_ENV).stdout.splitlines()
    site = installed.parent.parent
    for line in out[:5]:
        path = Path(line)
        assert path.is_relative_to(site) and path.exists(), line
    assert str(REPO) not in out[5]
    # the package data a deployed hub reads
    listed = subprocess.run([str(installed), "-m", "pip", "show", "-f", "lens-hub"], capture_output=True,
                            text=True, check=True, env=CLEAN_ENV).stdout
    for name in ("hub_config/profiles.yaml", "hub_config/atom_apps.yaml", "hub_config/catalog.yaml",
                 "hub_config/lens.example.yaml", "hub_config/idle_culler_config.py",
                 "hub_config/dask_gateway_config.py", "jupyter_ext/costs/data/prices.json"):
        assert name in listed, name
    assert "__editable__" not in listed


@pytest.fixture(scope="module")
def stack(installed):
    require(proxy_installed(), PROXY_MISSING)
    root = Path(tempfile.mkdtemp(prefix="lens-installed-"))
    root.chmod(0o711)
    hub = make_stack(root / "state", python=str(installed), cwd=root)
    hub.env = {k: v for k, v in hub.env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    hub.start()
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def kernel(stack):
    name, password = "smoke", "smoke-password-1"
    stack.add_account(name, password)
    token = stack.login_token(name, password)  # the real login form
    r = stack.spawn(name, "lab", token=token, timeout=180)
    assert r.status_code in (201, 202), r.text
    with RemoteKernel(stack.url, name, token) as k:
        yield k
    stack.stop_server(name)


def run_ok(kernel: RemoteKernel, code: str, timeout: float = 300):
    result = kernel.run(code, timeout)
    assert result.error is None, "\n".join(result.error["traceback"])
    assert "UsageError" not in result.stderr, result.stderr  # IPython prints these, no error message
    return result


def test_the_server_runs_the_installed_lens(kernel, installed):
    out = run_ok(kernel, "import jupyter_ext, sys; print(jupyter_ext.__file__); print(sys.executable)")
    module, python = out.stdout.split()
    assert Path(module).is_relative_to(installed.parent.parent)
    assert Path(python).parent == installed.parent


def test_atom_job_on_the_local_backend(kernel):
    out = run_ok(kernel, "job = %atom submit --name smoke --walltime 5m -- python3 -c 'print(6 * 7)'\n"
                         "print('state', job.wait(timeout=240))\nprint(job.logs())", timeout=300)
    assert "state succeeded" in out.stdout.lower(), out.stdout
    assert "42" in out.stdout.split("state", 1)[1]


def test_costs(kernel, stack):
    stack.lens("budgets", "set", "user:smoke", "7.77")  # the installed CLI, no LENS_DB_URL
    out = run_ok(kernel, "%costs --no-plot")
    html = "".join(d.get("text/html", "") for d in out.data)
    assert "Budget: $7.77" in html, out.data
    assert "servers" in html and "jobs" in html


def test_archive_then_restore(kernel):
    run = secrets.token_hex(4)  # homes outlive a test stack; names must not collide
    code = f"""
import os, pathlib
root = pathlib.Path.home()
(root / "smoke-{run}/sub").mkdir(parents=True)
(root / "smoke-{run}/a.txt").write_text("alpha\\n" * 1000)
(root / "smoke-{run}/sub/b.bin").write_bytes(os.urandom(200_000))
# over readers_from (2,000) small files: on 2+ cores the server's archive task hands
# them to reader processes, and the restore (over restore_processes_from, 1,000) to
# writer processes, both started from the installed package
(root / "smoke-{run}/many").mkdir()
for i in range(2100):
    (root / f"smoke-{run}/many/{{i:05}}.txt").write_text(f"row {{i}}\\n" * (i % 40))
task = %archive smoke-{run} --name smoke-{run} --wait
print("archived", task["status"])
back = %restore smoke-{run} --to back-{run} --wait
print("restored", back["status"])
same = all((root / "back-{run}" / p.relative_to(root)).read_bytes() == p.read_bytes()
           for p in (root / "smoke-{run}").rglob("*") if p.is_file())
print("same", same)
"""
    out = run_ok(kernel, code, timeout=300)
    assert "archived done" in out.stdout and "restored done" in out.stdout, out.stdout
    assert "same True" in out.stdout
    # %archives shows its table, and the cell adds no repr of the list after it
    listed = run_ok(kernel, f"%archives smoke-{run}")
    assert [sorted(d) for d in listed.data] == [["text/html", "text/plain"]], listed.data
    assert f"smoke-{run}" in listed.data[0]["text/html"]


def test_jupyterlab_does_not_ask_about_news(installed):
    """No "notified about official Jupyter news?" prompt: the wheel's settings overrides."""
    code = ("import json, sys, pathlib; p = pathlib.Path(sys.prefix, 'share/jupyter/lab/settings/overrides.json'); "
            "print(json.dumps(json.loads(p.read_text())))")
    out = subprocess.run([str(installed), "-c", code], capture_output=True, text=True, check=True,
                         cwd="/", env=CLEAN_ENV).stdout
    import json

    notification = json.loads(out)["@jupyterlab/apputils-extension:notification"]
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False


def test_the_lab_extension_is_prebuilt_in_the_wheel(installed):
    """JupyterLab of the installed venv lists the lens extension, enabled and OK, with no build."""
    jupyter = installed.parent / "jupyter"
    r = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True,
                       cwd="/", env={**CLEAN_ENV, "NO_COLOR": "1"}, timeout=120)
    out = r.stdout + r.stderr
    prefix = installed.parent.parent.resolve()
    line = next((x for x in out.splitlines() if "jupyterlab-lens" in x), "")
    assert "enabled" in line and "OK" in line, out
    assert (prefix / "share/jupyter/labextensions/jupyterlab-lens/static/style.js").is_file()
    assert (prefix / "share/jupyter/labextensions/jupyterlab-lens/install.json").is_file()


def test_dask_cluster_with_one_worker(kernel):
    code = """
from dask_gateway import Gateway
gateway = Gateway()
cluster = gateway.new_cluster()
cluster.scale(1)
client = cluster.get_client()
client.wait_for_workers(1, timeout=180)
print("answer", client.submit(lambda x: x + 1, 41).result())
client.close()
cluster.shutdown()
"""
    out = run_ok(kernel, code, timeout=300)
    assert "answer 42" in out.stdout, out.stdout + out.stderr
