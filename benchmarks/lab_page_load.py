"""JupyterLab page load with the lens extension against without it, side by side, one run.

One lens stack (`lens hub run`), two users on the `lab` profile. For one of them the
extension is disabled in their own page config (`~/.jupyter/labconfig/page_config.json`,
`disabledExtensions`, what `jupyter labextension disable --level=user` writes), so both
pages are the same JupyterLab from the same server code, one with jupyterlab-lens loaded
and one without.
Each round opens both pages in fresh browser contexts (cold cache, logged in), in
alternating order, in Debian's headless Chromium:

- load: navigation start -> the launcher is shown and JupyterLab's splash is gone;
- with the extension also: -> the status bar shows its figures (the extension's work
  done, including its first call to the lens service);
- the browser's CPU time for the page (Chromium's own TaskDuration metric).

The user server's start CPU is not measured here: the extension adds nothing to a
server's start (it is a prebuilt federated bundle JupyterLab lists per page request,
nothing is built or imported at start).

    /work/main/.venv/bin/python benchmarks/lab_page_load.py [--rounds 8] [--extension NAME ...]

`--extension` names the extensions disabled for the "without" user (default
jupyterlab-lens; `--extension jupyterlab-lens --extension dask-labextension` measures
lens's JupyterLab with its Dask tab against JupyterLab with neither). With
dask-labextension measured, its page also waits for the Dask sidebar's tab.

Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from tests.support.browser import chromium_browser  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import remove_account  # noqa: E402

EXTENSION = "jupyterlab-lens"
DASK_EXTENSION = "dask-labextension"
DASK_TAB = '.jp-SideBar [data-id="dask-dashboard-launcher"]'


def log_in(context, base: str, name: str, password: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)
    page.close()


def load_once(browser, base: str, name: str, state: dict, with_extension: bool,
              measured: tuple[str, ...] = (EXTENSION,)) -> dict:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, storage_state=state)
    context.set_default_timeout(120_000)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    t0 = time.perf_counter()
    page.goto(f"{base}/user/{name}/lab")
    page.locator(".jp-LauncherCard").first.wait_for(state="visible")
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    loaded = time.perf_counter() - t0
    out = {"load_s": loaded}
    if DASK_EXTENSION in measured:
        if with_extension:
            page.locator(DASK_TAB).wait_for(state="attached")
        else:
            assert page.locator(DASK_TAB).count() == 0, "dask-labextension should be disabled here"
    if EXTENSION in measured and with_extension:
        page.wait_for_function("() => { const s = document.querySelector('.jp-lens-status');"
                               " return s && !['loading'].includes(s.dataset.level); }")
        out["status_shown_s"] = time.perf_counter() - t0
    elif EXTENSION in measured:
        assert page.locator(".jp-lens-status").count() == 0, "the extension should be disabled here"
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    out["cpu_s"] = metrics.get("TaskDuration", 0.0)
    out["js_heap_mb"] = metrics.get("JSHeapUsedSize", 0) / 1e6
    context.close()
    return out


def disable_for(hub, name: str, extensions: tuple[str, ...] = (EXTENSION,)) -> None:
    """The user-level page config a user's own `jupyter labextension disable --level=user` writes."""
    home = Path(f"/home/jupyter-{name}") if os.geteuid() == 0 else hub.state / "homes" / name
    labconfig = home / ".jupyter" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {e: True for e in extensions}}))
    if os.geteuid() == 0:
        owner = home.stat()
        for path in (home / ".jupyter", labconfig, labconfig / "page_config.json"):
            os.chown(path, owner.st_uid, owner.st_gid)


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs), "min": min(xs), "max": max(xs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--extension", action="append", default=None,
                    help=f"an extension disabled for the 'without' user (repeat; default {EXTENSION})")
    args = ap.parse_args()
    measured = tuple(args.extension or [EXTENSION])
    built = REPO / "jupyter_ext/labextension/package.json"
    if not built.is_file():
        print("build the extension first: make labextension", file=sys.stderr)
        return 2

    root = Path(tempfile.mkdtemp(prefix="lens-bench-lab-"))
    jupyter_path = Path(tempfile.mkdtemp(prefix="lens-jupyter-path-"))
    jupyter_path.chmod(0o755)
    (jupyter_path / "labextensions").mkdir(mode=0o755)
    (jupyter_path / "labextensions" / EXTENSION).symlink_to(built.parent)
    hub = make_stack(root / "state", {"JUPYTER_PATH": str(jupyter_path)})
    users = {True: f"bw-{secrets.token_hex(3)}", False: f"bo-{secrets.token_hex(3)}"}
    passwords = {flag: secrets.token_urlsafe(12) for flag in users}
    results: dict[bool, list[dict]] = {True: [], False: []}
    hub.start(timeout=120)
    try:
        for flag, name in users.items():
            hub.add_account(name, passwords[flag])
            hub.create_user(name)
            r = hub.spawn(name, "lab", timeout=180)
            assert r.status_code in (201, 202), r.text
        disable_for(hub, users[False], measured)
        with chromium_browser() as browser:
            states = {}
            for flag, name in users.items():
                context = browser.new_context()
                log_in(context, hub.url, name, passwords[flag])
                states[flag] = context.storage_state()
                context.close()
            for flag in users:  # warm-up: the servers' first page builds their caches
                load_once(browser, hub.url, users[flag], states[flag], flag, measured)
            for i in range(args.rounds):
                order = (True, False) if i % 2 == 0 else (False, True)
                for flag in order:
                    results[flag].append(load_once(browser, hub.url, users[flag], states[flag], flag, measured))
    finally:
        for name in users.values():
            try:
                hub.stop_server(name)
            except Exception as exc:  # report, and still stop the stack
                print(f"stopping {name}: {exc}", file=sys.stderr)
        hub.stop()
        if os.geteuid() == 0:
            for name in users.values():
                remove_account(f"jupyter-{name}")
        shutil.rmtree(jupyter_path, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)

    report = {"rounds": args.rounds, "measured": list(measured), "with": {}, "without": {}}
    for key in ("load_s", "cpu_s", "js_heap_mb"):
        report["with"][key] = summary([r[key] for r in results[True]])
        report["without"][key] = summary([r[key] for r in results[False]])
    if EXTENSION in measured:
        report["with"]["status_shown_s"] = summary([r["status_shown_s"] for r in results[True]])
    report["ratio_load_median"] = report["with"]["load_s"]["median"] / report["without"]["load_s"]["median"]
    report["ratio_load_mean"] = report["with"]["load_s"]["mean"] / report["without"]["load_s"]["mean"]
    report["ratio_cpu_median"] = report["with"]["cpu_s"]["median"] / report["without"]["cpu_s"]["median"]
    report["ratio_cpu_mean"] = report["with"]["cpu_s"]["mean"] / report["without"]["cpu_s"]["mean"]
    report["load_average"] = os.getloadavg()
    print(f"JupyterLab page load, {args.rounds} rounds, alternating (load average {os.getloadavg()[0]:.1f})")
    print(f"{'':24}{'with lens':>14}{'without':>14}{'ratio':>8}")
    for key, label in (("load_s", "launcher shown (s)"), ("cpu_s", "browser CPU (s)")):
        w, o = report["with"][key], report["without"][key]
        print(f"{label + ' median':24}{w['median']:14.3f}{o['median']:14.3f}{w['median'] / o['median']:8.3f}")
        print(f"{label + ' mean':24}{w['mean']:14.3f}{o['mean']:14.3f}{w['mean'] / o['mean']:8.3f}")
    print(f"measured: {', '.join(measured)}")
    if EXTENSION in measured:
        print(f"{'status bar shown (s)':24}{report['with']['status_shown_s']['median']:14.3f}")
    print(f"{'JS heap (MB) median':24}{report['with']['js_heap_mb']['median']:14.1f}"
          f"{report['without']['js_heap_mb']['median']:14.1f}")
    out = REPO / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"lab_page_load-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
