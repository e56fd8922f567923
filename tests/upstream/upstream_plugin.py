"""pytest plugin that runs an upstream checkout's own tests against lens's classes.

Loaded by ``run_upstream_suite.py`` into a child pytest whose root is the
upstream checkout (kubespawner or dask-gateway). It contains no upstream
code: it only chooses which of upstream's tests run, substitutes lens's
classes for upstream's *before* upstream's test modules import them, and
writes each test's outcome to a JSON report.

Environment (set by the runner):

- ``LENS_UPSTREAM_SUITE``: ``kubespawner`` or ``dask-gateway``;
- ``LENS_UPSTREAM_IMPL``: ``upstream`` (baseline: upstream's own classes) or
  ``lens`` (lens's subclasses substituted);
- ``LENS_UPSTREAM_REPORT``: where to write the JSON report.

This file is loaded by path under the name ``lens_upstream_plugin`` and must
not import lens's ``tests`` package: dask-gateway's tests are a package named
``tests`` too.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import tempfile
from pathlib import Path

SUITE = os.environ.get("LENS_UPSTREAM_SUITE", "")
IMPL = os.environ.get("LENS_UPSTREAM_IMPL", "upstream")
REPORT = os.environ.get("LENS_UPSTREAM_REPORT", "")

# kubespawner: a test that uses one of these fixtures needs a Kubernetes cluster
KUBE_CLUSTER_FIXTURES = {"kube_client", "hub_pod", "hub_pod_ssl", "exec_python", "exec_python_pod"}
# dask-gateway: the local-backend tests (whole modules), and the tests elsewhere
# that run the local backend (their body names upstream's LocalTestingBackend)
GATEWAY_LOCAL_MODULES = {"test_local_backend.py"}
GATEWAY_LOCAL_MARKER = "LocalTestingBackend"

_CATALOG_DIR = Path(tempfile.mkdtemp(prefix="lens-upstream-catalog-"))
_catalog_count = 0


# -- kubespawner: profile_list -> lens catalog ---------------------------------------
def _catalog_entry(entry: dict, slug: str | None, image: str) -> dict:
    """An upstream profile_list entry as a lens catalog entry: the keys lens shares with
    kubespawner are kept as they are; lens's required ones (description, image, price)
    are filled with neutral values. A missing slug stays missing (lens requires one:
    a listed difference)."""
    out = dict(entry)
    if slug is not None and "slug" not in out:
        out["slug"] = slug
    out.setdefault("description", entry.get("display_name") or "profile")
    override = entry.get("kubespawner_override") or {}
    out["image"] = override["image"] if isinstance(override.get("image"), str) else image
    out["hourly_cost"] = 0.0
    return out


def write_catalog(profile_list, image: str) -> str:
    """Write ``profile_list`` (a list, or a dict keyed by slug) as a catalog file."""
    import yaml

    global _catalog_count
    if isinstance(profile_list, dict):
        entries = [_catalog_entry(profile_list[k], k, image) for k in sorted(profile_list)]
    else:
        entries = [_catalog_entry(e, None, image) for e in profile_list]
    if not entries:  # no profiles upstream: one neutral profile that changes nothing else
        entries = [{"slug": "default", "display_name": "Default", "description": "Default",
                    "image": image, "hourly_cost": 0.0}]
    _catalog_count += 1
    path = _CATALOG_DIR / f"profiles-{_catalog_count}.yaml"
    path.write_text(yaml.safe_dump({"profiles": copy.deepcopy(entries)}, sort_keys=False))
    return str(path)


def _lens_kubespawner():
    """lens's KubeProfileSpawner, adapted only where upstream's tests configure profiles
    in code: an upstream ``profile_list`` (in config or assigned at run time) becomes
    the catalog file lens reads. Nothing else of lens is changed."""
    from traitlets import validate

    from spawners.kube import KubeProfileSpawner

    class KubeProfileSpawnerUnderUpstreamTests(KubeProfileSpawner):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("budget_gate", False)  # no lens service in upstream's tests
            super().__init__(*args, **kwargs)
            if "profiles_path" not in self.config.get("KubeProfileSpawner", {}) and not getattr(
                self, "_lens_upstream_catalog", False
            ):
                self.profiles_path = write_catalog([], self.image)

        @validate("profile_list")
        def _refuse_runtime_profile_list(self, proposal):
            value = proposal.value
            if isinstance(value, list | dict) and not getattr(value, "_lens_catalog", False):
                # what an operator does with a z2jh profileList: put it in the catalog
                self.profiles_path = write_catalog(value, self.image)
                self._lens_upstream_catalog = True
                return self._default_profile_list()
            return super()._refuse_runtime_profile_list(proposal)

    KubeProfileSpawnerUnderUpstreamTests.__name__ = "KubeProfileSpawner"
    return KubeProfileSpawnerUnderUpstreamTests


# -- dask-gateway ---------------------------------------------------------------------
def _patch_gateway_backend() -> None:
    """Upstream's tests subclass ``UnsafeLocalBackend`` (``utils_test.LocalTestingBackend``)
    when ``utils_test`` is imported: point that name at lens's ``LensUnsafeLocalBackend``
    first, so their testing backend is a lens backend."""
    from dask_gateway_server.backends import local

    from jupyter_ext.gateway.backend import LensUnsafeLocalBackend

    local.UnsafeLocalBackend = LensUnsafeLocalBackend


# -- applied when the plugin is loaded, before upstream's conftest and test modules ---
if SUITE == "kubespawner" and IMPL == "lens":
    import kubespawner

    kubespawner.KubeSpawner = _lens_kubespawner()
elif SUITE == "dask-gateway" and IMPL == "lens":
    _patch_gateway_backend()


def _deselect_reason(item) -> str | None:
    if SUITE == "kubespawner":
        needs = KUBE_CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if needs:
            return f"needs a Kubernetes cluster ({', '.join(sorted(needs))})"
        return None
    if SUITE == "dask-gateway":
        if item.path.name in GATEWAY_LOCAL_MODULES:
            return None
        try:
            source = inspect.getsource(item.function)
        except (AttributeError, OSError, TypeError):
            source = ""
        if GATEWAY_LOCAL_MARKER in source:
            return None
        return "not a local-backend test"
    return None


_results: dict[str, dict] = {}
_deselected: dict[str, str] = {}


def pytest_collection_modifyitems(config, items):
    keep = []
    for item in items:
        reason = _deselect_reason(item)
        if reason:
            _deselected[item.nodeid] = reason
        else:
            keep.append(item)
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid in _deselected])
    items[:] = keep


def pytest_runtest_logreport(report):
    entry = _results.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        crash = getattr(report.longrepr, "reprcrash", None)
        entry["message"] = (crash.message if crash else str(report.longrepr))[:500]
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        longrepr = report.longrepr
        entry["message"] = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)[:500]


def pytest_collectreport(report):
    if report.failed:
        _results[report.nodeid or "<collection>"] = {
            "outcome": "error",
            "message": str(report.longrepr)[-500:],
        }


def pytest_sessionfinish(session, exitstatus):
    if REPORT:
        Path(REPORT).write_text(
            json.dumps({"suite": SUITE, "impl": IMPL, "results": _results, "deselected": _deselected},
                       indent=1, sort_keys=True)
        )
