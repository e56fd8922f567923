"""The desktop profile against JupyterLab, for the same user in the same run.

One lens stack (`lens hub run`), one user, Debian's headless Chromium through the real
hub login. Each round starts both profiles from the spawn form, in alternating order:

- desktop ready: the form's Start click -> the noVNC canvas shows the XFCE desktop
  (its panel and icons drawn: many distinct colours, not a blank canvas);
- lab ready: the form's Start click -> JupyterLab's launcher shown, splash gone.

Then, with the desktop idle (the page open, no input) for --settle seconds, the memory the
desktop session holds: the PSS of every process of the user's unix account except the
Jupyter server itself (Xvnc, the XFCE session, dbus), and the server's own PSS next to it
(what a lab session holds with no kernel). PSS needs root (other accounts' /proc).

    /work/main/.venv/bin/python benchmarks/desktop.py [--rounds 3] [--settle 20]

Results: a table on stdout and JSON in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from tests.browser.test_desktop import CANVAS_COLOURS  # noqa: E402
from tests.support.browser import chromium_browser  # noqa: E402
from tests.support.desktop import DESKTOP_MISSING, desktop_installed  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402
from tests.support.unix import remove_account  # noqa: E402

TIMEOUT_MS = 180_000


def log_in(page, name: str, password: str) -> None:
    page.goto("/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(r"/hub/(home|spawn)"))


def submit_form(page, profile: str) -> float:
    page.goto("/hub/spawn")
    page.locator(f'form#spawn_form label[data-profile="{profile}"] input[name="profile"]').check()
    t0 = time.perf_counter()
    page.click('form#spawn_form button[type="submit"]')
    return t0


def desktop_ready(page, name: str) -> float:
    t0 = submit_form(page, "desktop")
    page.wait_for_url(re.compile(rf"/user/{name}/desktop/"), timeout=TIMEOUT_MS)
    page.wait_for_function(f"() => ({CANVAS_COLOURS})() >= 16", timeout=TIMEOUT_MS, polling=100)
    return time.perf_counter() - t0


def lab_ready(page, name: str) -> float:
    t0 = submit_form(page, "lab")
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=TIMEOUT_MS)
    page.locator(".jp-LauncherCard").first.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))


def session_memory(user: str, server_pid: int) -> dict:
    """PSS (MB) of the user's processes: the Jupyter server, and everything else (the desktop)."""
    ps = subprocess.run(["ps", "-o", "pid=,comm=", "-u", user], capture_output=True, text=True).stdout
    procs = [(int(p), comm) for p, comm in (line.split(None, 1) for line in ps.splitlines() if line.strip())]
    desktop = {comm: 0 for _, comm in procs}
    for pid, comm in procs:
        if pid != server_pid:
            desktop[comm] += pss_kb(pid)
    top = sorted(((kb / 1024, comm) for comm, kb in desktop.items() if kb), reverse=True)
    return {"desktop_mb": sum(kb for kb in desktop.values()) / 1024, "server_mb": pss_kb(server_pid) / 1024,
            "processes": len(procs) - 1, "largest": [(comm, round(mb, 1)) for mb, comm in top[:6]]}


def server_pid(hub, name: str) -> int:
    model = hub.api("GET", f"/users/{name}?include_stopped_servers").json()
    return int(model["servers"][""]["state"]["pid"])


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs), "min": min(xs), "max": max(xs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds the desktop idles before PSS")
    args = ap.parse_args()
    if not desktop_installed():
        print(DESKTOP_MISSING, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("run as root: the desktop's memory is read from another account's /proc", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="lens-bench-desktop-"))
    root.chmod(0o711)
    hub = make_stack(root / "state")
    name, password = f"bd-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    times: dict[str, list[float]] = {"desktop": [], "lab": []}
    memory: list[dict] = []
    hub.start(timeout=120)
    try:
        hub.add_account(name, password)
        with chromium_browser() as browser:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=hub.url)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            log_in(page, name, password)
            # warm-up: the account, its home and the first start's caches
            for ready in (lab_ready, desktop_ready):
                ready(page, name)
                hub.stop_server(name)
            for i in range(args.rounds):
                order = ("desktop", "lab") if i % 2 == 0 else ("lab", "desktop")
                for profile in order:
                    took = (desktop_ready if profile == "desktop" else lab_ready)(page, name)
                    times[profile].append(took)
                    if profile == "desktop":
                        # idle with the page open: what a forgotten tab holds (a measurement
                        # period, not a wait for a condition)
                        time.sleep(args.settle)
                        memory.append(session_memory(f"jupyter-{name}", server_pid(hub, name)))
                    hub.stop_server(name)
            context.close()
    finally:
        try:
            if hub.api("GET", f"/users/{name}").json().get("servers"):
                hub.stop_server(name)
        except Exception as exc:  # report, and still stop the stack
            print(f"stopping {name}: {exc}", file=sys.stderr)
        hub.stop()
        remove_account(f"jupyter-{name}")
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "rounds": args.rounds, "settle_s": args.settle, "load_average": os.getloadavg(),
        "desktop_ready_s": summary(times["desktop"]), "lab_ready_s": summary(times["lab"]),
        "desktop_pss_mb": summary([m["desktop_mb"] for m in memory]),
        "server_pss_mb": summary([m["server_mb"] for m in memory]),
        "memory_samples": memory,
    }
    d, lab = report["desktop_ready_s"], report["lab_ready_s"]
    report["ratio_ready_median"] = d["median"] / lab["median"]
    report["ratio_ready_mean"] = d["mean"] / lab["mean"]
    print(f"desktop against lab, same user, {args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
    print(f"{'':28}{'desktop':>10}{'lab':>10}{'ratio':>8}")
    print(f"{'ready, median (s)':28}{d['median']:10.2f}{lab['median']:10.2f}{d['median'] / lab['median']:8.2f}")
    print(f"{'ready, mean (s)':28}{d['mean']:10.2f}{lab['mean']:10.2f}{d['mean'] / lab['mean']:8.2f}")
    print(f"idle desktop session PSS, median: {report['desktop_pss_mb']['median']:.0f} MB "
          f"({memory[-1]['processes']} processes; largest {memory[-1]['largest']}); "
          f"the Jupyter server itself: {report['server_pss_mb']['median']:.0f} MB")
    out = REPO / "benchmarks/results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"desktop-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
