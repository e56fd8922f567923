import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require
from tests.support.hub import PROXY_MISSING, make_stack, proxy_installed


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    require(proxy_installed(), PROXY_MISSING)
    # Not under pytest's 0700 temp dir: jobs run as the users' own accounts and
    # must traverse the state directory to reach their files.
    root = Path(tempfile.mkdtemp(prefix="lens-stack-"))
    root.chmod(0o711)
    # servers retry their kept calls every 5 s, not 20 (test_outbox waits for one)
    hub = make_stack(root / "state", {"LENS_OUTBOX_INTERVAL": "5"})
    hub.start()
    yield hub
    hub.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def ip():
    """One IPython shell for the session with the lens magics loaded (as in kernels)."""
    from IPython.core.getipython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython() or get_ipython()
    shell.extension_manager.load_extension("jupyter_ext.kernel.magics")
    return shell


def as_kernel_of(monkeypatch, stack, name: str, token: str) -> None:
    """Give this process the environment a kernel in NAME's server has."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", f"{stack.url}/user/{name}/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
