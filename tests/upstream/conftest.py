"""Upstream's contracts, run against lens's subclasses.

Neither PyPI sdist (jupyterhub-kubespawner 7.1.0, dask-gateway-server
2026.3.0) ships its test suite, and lens must not vendor upstream's test code,
so these modules restate the behaviour upstream's own no-cluster tests and
docs promise (kubespawner: ``tests/test_profile.py``, ``test_spawner.py``;
dask-gateway: ``tests/test_local_backend.py``), and run each test once on the
upstream class and once on lens's (``KubeSpawner`` vs ``KubeProfileSpawner``,
``UnsafeLocalBackend`` vs ``LensUnsafeLocalBackend``). The upstream run proves
the test states upstream's behaviour on the installed version; the lens run
proves lens keeps it.

Every deliberate difference is listed in ``KNOWN_DIFFERENCES`` below (an
expected failure on the lens run, strict: it fails when lens starts to match)
and in docs/upstream.md.
"""

from __future__ import annotations

import pytest

# test name -> why lens differs from upstream (applied to the "lens" parameter only)
KNOWN_DIFFERENCES: dict[str, str] = {
    "test_slug_generated_from_display_name": (
        "lens's catalog requires a slug (it names the profile in the ledger, metrics and workshops)"
    ),
    "test_callable_override_value": (
        "the catalog is YAML: no callables; hub-side logic belongs in a spawner subclass or hook"
    ),
    "test_profile_list_assigned_at_run_time_is_used": (
        "profiles come from the one catalog (prices, groups): a run-time profile_list is refused "
        "with a TraitError instead of being used"
    ),
    "test_configured_volumes_are_kept": (
        "lens's pod layout owns volumes and volume_mounts (home PVC, shared data); add more "
        "through a profile's kubespawner_override"
    ),
    "test_unknown_profile_is_a_value_error": (
        "lens refuses an unknown profile with a 400 HTTPError (a user-facing message), not ValueError"
    ),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if not item.module.__name__.startswith("tests.upstream."):
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("flavour") != "lens":
            continue
        reason = KNOWN_DIFFERENCES.get(item.originalname)
        if reason:
            item.add_marker(pytest.mark.xfail(reason=f"known difference: {reason}", strict=True))
