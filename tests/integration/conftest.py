import shutil

import pytest

from tests.conftest import require
from tests.support.hub import make_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    require(shutil.which("configurable-http-proxy") is not None or (
        __import__("pathlib").Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/.bin/configurable-http-proxy"
    ).exists(), "configurable-http-proxy (npm) is not installed: run `make proxy`")
    hub = make_stack(tmp_path_factory.mktemp("lens-stack"))
    hub.start()
    yield hub
    hub.stop()
