"""Run upstream's own tests (from an upstream checkout) against lens's classes.

lens does not copy upstream's test code, and the PyPI sdists do not ship it,
so this runner takes a checkout of the installed version's tag:

- kubespawner 7.1.0: every test in ``tests/`` that needs no Kubernetes cluster
  (deselected: the ones using ``kube_client`` and the fixtures built on it);
- dask-gateway 2026.3.0: ``tests/test_local_backend.py`` and the tests of
  ``tests/test_db_backend.py`` that run the local backend.

Each suite runs twice in a child pytest rooted at the checkout: with
upstream's classes (the baseline) and with lens's substituted
(``KubeProfileSpawner``; ``LensUnsafeLocalBackend``) by
``upstream_plugin.py``. A test that passes on the baseline must pass on lens,
unless ``KNOWN_DIFFERENCES`` lists it with the reason (docs/upstream.md).

Where the checkouts are: ``--src DIR`` or ``$LENS_UPSTREAM_SRC``, a directory
holding ``kubespawner-7.1.0/`` and ``dask-gateway-2026.3.0/`` (or
``kubespawner/`` and ``dask-gateway/``), or a single checkout. Default: ``.cache/upstream-src`` in the
repository. ``--fetch DIR`` clones the tags there (needs GitHub).

kubespawner's tests import the *sync* ``kubernetes`` client (lens's ``[test]``
extra installs a version whose ``ApiClient`` serializes kubernetes_asyncio's
models: < 37).

    python -m tests.upstream.run_upstream_suite --src /tmp/upstream-src [--suite kubespawner]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN = HERE / "upstream_plugin.py"
DEFAULT_SRC = REPO / ".cache" / "upstream-src"


@dataclass(frozen=True)
class Suite:
    name: str
    distribution: str  # the installed package whose tests these are
    version: str
    git_url: str
    marker: str  # a file that identifies a checkout of this project
    paths: tuple[str, ...]  # what to run, relative to the checkout


SUITES = {
    "kubespawner": Suite(
        "kubespawner", "jupyterhub-kubespawner", "7.1.0",
        "https://github.com/jupyterhub/kubespawner", "tests/test_spawner.py", ("tests",),
    ),
    "dask-gateway": Suite(
        "dask-gateway", "dask-gateway-server", "2026.3.0",
        "https://github.com/dask/dask-gateway", "tests/test_local_backend.py",
        ("tests/test_local_backend.py", "tests/test_db_backend.py"),
    ),
}

# suite -> test (function name, or a node id's tail) -> why lens differs on purpose.
# Each must pass on the baseline and fail on lens; the check fails otherwise.
KNOWN_DIFFERENCES: dict[str, dict[str, str]] = {
    "kubespawner": {
        "test_empty_user_options_and_profile_options_api": (
            "its profile has no slug: lens's catalog requires one (it names the profile in the "
            "ledger, metrics and workshops) where kubespawner derives it from display_name"
        ),
        "test_default_profile": (
            "lens's own environment: the server's environment also has LENS_SERVICE_URL, "
            "LENS_PROFILE and LENS_HOURLY_COST (and the Dask Gateway variables when configured)"
        ),
        "test_kubespawner_override": (
            "lens's own environment: LENS_SERVICE_URL, LENS_PROFILE, LENS_HOURLY_COST are added "
            "(the None in the override does delete the configured variable, as upstream)"
        ),
        "test_user_options_set_from_form_invalid_regex": (
            "lens refuses a free value that fails validation_regex when the form is read, with a "
            "400 and the profile's validation_message, where upstream accepts the form and raises "
            "ValueError (a 500) later in load_user_options"
        ),
        "test_unlisted_choice_non_string_override": (
            "lens's own environment: LENS_SERVICE_URL, LENS_PROFILE, LENS_HOURLY_COST are added "
            "(the free value fills {value} in nested overrides and leaves ${JUPYTER_USER} as upstream)"
        ),
    },
    "dask-gateway": {
        "test_gateway_resume_clusters_after_shutdown": (
            "the test keeps three clusters of one user active; lens's per-user allowance "
            "(GatewaySettings.user_max_clusters, default 2) refuses the third with a clear message"
        ),
    },
}


def find_source(suite: Suite, src: str | os.PathLike | None = None) -> Path | None:
    """The checkout of ``suite`` under ``src`` (or $LENS_UPSTREAM_SRC), or None."""
    base = Path(src or os.environ.get("LENS_UPSTREAM_SRC") or DEFAULT_SRC)
    candidates = [base, base / f"{suite.name}-{suite.version}", base / suite.name]
    candidates += sorted(base.glob(f"{suite.name}*")) if base.is_dir() else []
    return next((c for c in candidates if (c / suite.marker).is_file()), None)


def checkout_version(suite: Suite, checkout: Path) -> str | None:
    """The version a checkout declares (pyproject / package __init__), if found."""
    pattern = re.compile(r"""^\s*(?:__)?version(?:__)?\s*=\s*["']([^"']+)["']""", re.M)
    for rel in ("pyproject.toml", "kubespawner/_version.py", "dask-gateway-server/dask_gateway_server/_version.py"):
        path = checkout / rel
        if path.is_file():
            match = pattern.search(path.read_text())
            if match:
                return match.group(1)
    return None


def fetch(dest: Path) -> None:
    """Clone each suite's tag for the installed version into ``dest`` (needs GitHub)."""
    dest.mkdir(parents=True, exist_ok=True)
    for suite in SUITES.values():
        target = dest / f"{suite.name}-{suite.version}"
        if not target.exists():
            subprocess.run(
                ["git", "clone", "--quiet", "--depth", "1", "--branch", suite.version, suite.git_url, str(target)],
                check=True,
            )


def _kubeconfig(tmp: Path) -> Path:
    """kubernetes_asyncio reads the kubeconfig on import; give it one for no cluster."""
    path = tmp / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        'clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]\n'
        "users: [{name: offline, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: lens}}]\n"
        "current-context: offline\n"
    )
    return path


def _dask_shims(tmp: Path) -> Path:
    """distributed >= 2025 has no ``dask-scheduler``/``dask-worker`` executables, which
    upstream's ClusterConfig defaults name; put the ``dask scheduler``/``dask worker``
    equivalents on PATH for both runs."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    dask = Path(sys.executable).with_name("dask")
    for name, sub in (("dask-scheduler", "scheduler"), ("dask-worker", "worker")):
        if Path(sys.executable).with_name(name).exists():
            continue
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nexec "{dask}" {sub} "$@"\n')
        shim.chmod(0o755)
    return bindir


BOOTSTRAP = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lens_upstream_plugin", sys.argv[1])
plugin = importlib.util.module_from_spec(spec)
sys.modules["lens_upstream_plugin"] = plugin
spec.loader.exec_module(plugin)
import pytest
sys.exit(pytest.main(sys.argv[2:], plugins=[plugin]))
"""


def run(suite: Suite, impl: str, checkout: Path, extra_args: list[str] | None = None,
        timeout: float = 900) -> dict:
    """Run ``suite``'s selected tests from ``checkout`` with ``impl`` ("upstream" or
    "lens") classes; return the plugin's report plus the child's exit code and output."""
    with tempfile.TemporaryDirectory(prefix=f"lens-upstream-{suite.name}-{impl}-") as tmpdir:
        tmp = Path(tmpdir)
        report = tmp / "report.json"
        env = {k: v for k, v in os.environ.items()
               if k not in ("LENS_SERVICE_URL", "LENS_SCRATCH_BUCKET", "JUPYTERHUB_API_TOKEN",
                            "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
        env.update(
            LENS_UPSTREAM_SUITE=suite.name,
            LENS_UPSTREAM_IMPL=impl,
            LENS_UPSTREAM_REPORT=str(report),
            LENS_STATE_DIR=str(tmp / "state"),
            KUBECONFIG=str(_kubeconfig(tmp)),
            PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            PATH=os.pathsep.join([str(_dask_shims(tmp)), os.environ.get("PATH", "")]),
            PYTHONDONTWRITEBYTECODE="1",
        )
        args = [
            str(PLUGIN),
            "-c", str(checkout / "pyproject.toml"), "--rootdir", str(checkout),
            "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
            "-p", "no:cacheprovider", "-q", "--color=no", "--durations=0", "-rN",
            *(str(checkout / p) for p in suite.paths),
            *(extra_args or []),
        ]
        proc = subprocess.run(
            [sys.executable, "-c", BOOTSTRAP, *args], cwd=tmp, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
        data = json.loads(report.read_text()) if report.exists() else {"results": {}, "deselected": {}}
    data.update(exit_code=proc.returncode, output=proc.stdout[-20000:] + proc.stderr[-5000:])
    return data


def counts(report: dict) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "xfailed": 0}
    for entry in report["results"].values():
        out[entry["outcome"]] = out.get(entry["outcome"], 0) + 1
    out["deselected"] = len(report["deselected"])
    return out


def known_reason(suite: Suite, nodeid: str) -> str | None:
    name = nodeid.split("::")[-1]
    table = KNOWN_DIFFERENCES[suite.name]
    return table.get(nodeid) or table.get(name) or table.get(name.split("[")[0])


def compare(suite: Suite, baseline: dict, lens: dict) -> list[str]:
    """What is wrong: a baseline pass lens fails without a listed reason, or a listed
    difference that no longer fails (remove it from the list)."""
    problems = []
    base, mine = baseline["results"], lens["results"]
    if not any(e["outcome"] == "passed" for e in base.values()):
        problems.append(f"{suite.name}: the baseline run passed nothing: {baseline['output'][-2000:]}")
    for nodeid, entry in sorted(base.items()):
        if entry["outcome"] != "passed":
            continue
        got = mine.get(nodeid, {"outcome": "missing", "message": "not run on lens"})
        reason = known_reason(suite, nodeid)
        if got["outcome"] != "passed" and not reason:
            problems.append(f"{nodeid}: {got['outcome']} on lens: {got['message']}")
        elif got["outcome"] == "passed" and reason:
            problems.append(f"{nodeid}: listed as a difference but passes on lens now")
    return problems


def summary(suite: Suite, baseline: dict, lens: dict) -> str:
    b, m = counts(baseline), counts(lens)
    listed = sorted(n for n, e in lens["results"].items()
                    if e["outcome"] != "passed" and baseline["results"].get(n, {}).get("outcome") == "passed"
                    and known_reason(suite, n))
    lines = [
        f"{suite.name} {suite.version}: upstream baseline {b['passed']} passed / "
        f"{b['failed'] + b['error']} failed / {b['skipped'] + b['xfailed']} skipped; "
        f"lens {m['passed']} passed / {m['failed'] + m['error']} failed / {m['skipped'] + m['xfailed']} skipped; "
        f"{len(listed)} listed differences; {b['deselected']} deselected (need a cluster / not local-backend)",
    ]
    for nodeid in listed:
        lines.append(f"  listed: {nodeid}: {known_reason(suite, nodeid)}")
    for nodeid, entry in sorted(baseline["results"].items()):
        if entry["outcome"] in ("failed", "error"):
            lines.append(f"  baseline {entry['outcome']}: {nodeid}: {entry['message'][:200]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", help="checkouts directory (default: $LENS_UPSTREAM_SRC, .cache/upstream-src)")
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    parser.add_argument("--impl", choices=["upstream", "lens", "both"], default="both")
    parser.add_argument("--fetch", metavar="DIR", help="clone the tags into DIR first (needs GitHub)")
    parser.add_argument("--json", metavar="FILE", help="write the reports as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every non-passing test")
    args, extra = parser.parse_known_args(argv)
    if args.fetch:
        fetch(Path(args.fetch))
        args.src = args.src or args.fetch
    status, reports = 0, {}
    for name in args.suite or sorted(SUITES):
        suite = SUITES[name]
        checkout = find_source(suite, args.src)
        if checkout is None:
            print(f"{name}: no checkout found (--src or $LENS_UPSTREAM_SRC)", file=sys.stderr)
            status = 2
            continue
        installed = importlib.metadata.version(suite.distribution)
        if installed != suite.version or checkout_version(suite, checkout) not in (None, suite.version):
            print(f"{name}: installed {installed}, checkout {checkout_version(suite, checkout)}, "
                  f"expected {suite.version}", file=sys.stderr)
        impls = ["upstream", "lens"] if args.impl == "both" else [args.impl]
        reports[name] = {impl: run(suite, impl, checkout, extra) for impl in impls}
        for impl, report in reports[name].items():
            c = counts(report)
            print(f"{name} [{impl}]: " + ", ".join(f"{v} {k}" for k, v in c.items()))
            if args.verbose:
                for nodeid, entry in sorted(report["results"].items()):
                    if entry["outcome"] != "passed":
                        print(f"  {entry['outcome']}: {nodeid}: {entry['message'][:300]}")
        if args.impl == "both":
            print(summary(suite, reports[name]["upstream"], reports[name]["lens"]))
            problems = compare(suite, reports[name]["upstream"], reports[name]["lens"])
            for problem in problems:
                print(f"  PROBLEM {problem}")
            status = status or (1 if problems else 0)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1, sort_keys=True))
    return status


if __name__ == "__main__":
    sys.exit(main())
