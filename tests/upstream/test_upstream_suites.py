"""Upstream's own tests, from an upstream checkout, against lens's classes.

``run_upstream_suite.py`` runs kubespawner 7.1.0's no-cluster tests with
``KubeProfileSpawner`` in place of ``KubeSpawner``, and dask-gateway
2026.3.0's local-backend tests with ``LensUnsafeLocalBackend`` in place of
``UnsafeLocalBackend``, each next to a baseline run on upstream's classes.
Every test the baseline passes must pass on lens, or be listed in
``KNOWN_DIFFERENCES`` (and then fail on lens: the list stays exact).

The checkouts are not in the repository (lens does not copy upstream's code
and the PyPI sdists do not ship the tests): without one this skips, with the
reason, also under CI=true, where GitHub is not reachable. See docs/upstream.md.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from tests.conftest import require
from tests.upstream import run_upstream_suite as runner


@pytest.fixture
def suite(request):
    suite = runner.SUITES[request.param]
    checkout = runner.find_source(suite)
    if checkout is None:
        pytest.skip(
            f"no checkout of {suite.name} {suite.version}'s tests: set LENS_UPSTREAM_SRC to a "
            f"directory holding {suite.name}-{suite.version}/ (git clone --branch {suite.version} "
            f"{suite.git_url}), or run `python -m tests.upstream.run_upstream_suite --fetch "
            f"{runner.DEFAULT_SRC}` where GitHub is reachable"
        )
    installed = importlib.metadata.version(suite.distribution)
    if installed != suite.version:
        pytest.skip(f"{suite.distribution} {installed} is installed; the known differences are "
                    f"for {suite.version}: review them and update SUITES")
    version = runner.checkout_version(suite, checkout)
    if version not in (None, suite.version):
        pytest.skip(f"{checkout} is {suite.name} {version}, not the installed {suite.version}")
    if suite.name == "kubespawner":
        require(importlib.util.find_spec("kubernetes") is not None,
                "kubespawner's tests need the sync `kubernetes` client (lens's [test] extra)")
    return suite, checkout


def check(suite, checkout):
    baseline = runner.run(suite, "upstream", checkout)
    lens = runner.run(suite, "lens", checkout)
    print(runner.summary(suite, baseline, lens))
    problems = runner.compare(suite, baseline, lens)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("suite", ["kubespawner"], indirect=True)
def test_kubespawner_no_cluster_tests_on_kube_profile_spawner(suite):
    check(*suite)


@pytest.mark.integration  # real schedulers and workers: run under the shared lock
@pytest.mark.parametrize("suite", ["dask-gateway"], indirect=True)
def test_dask_gateway_local_backend_tests_on_lens_backend(suite):
    check(*suite)
