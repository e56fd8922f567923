"""Dask worker time is charged through the real stack, across a crash of the lens
service: JupyterHub, the proxy, the lens service and dask-gateway-server all real,
the cluster's workers real processes of the user's unix account.

The stack here is its own (not the shared ``stack`` fixture): the service charges
every 2 s (``c.CostsSettings.accrue_interval`` through ``LENS_SERVICE_CONFIG``)
instead of every 60 s.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy as sa

from jupyter_ext.gateway.metering import cost_microusd
from jupyter_ext.kernel import dask_client_fix as client_fix
from tests.conftest import require
from tests.support.hub import PROXY_MISSING, make_stack, proxy_installed

pytestmark = pytest.mark.integration

ACCRUE_SECONDS = 2


@pytest.fixture(scope="module")
def charging_stack():
    require(proxy_installed(), PROXY_MISSING)
    require(os.geteuid() == 0, "clusters run as the users' unix accounts: needs root")
    client_fix.install()
    root = Path(tempfile.mkdtemp(prefix="lens-charge-"))
    root.chmod(0o711)
    config = root / "lens_service_config.py"
    config.write_text(f"c.CostsSettings.accrue_interval = {ACCRUE_SECONDS}\n")
    hub = make_stack(root / "state", extra_env={"LENS_SERVICE_CONFIG": str(config)})
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)


def costs_of(stack, token: str, **params) -> requests.Response:
    return requests.get(f"{stack.url}/services/lens/api/costs", params=params,
                        headers={"Authorization": f"token {token}"}, timeout=30)


def lens_service_proc(stack) -> psutil.Process | None:
    for child in psutil.Process(stack.hub_pid()).children():
        try:
            if "jupyter_ext.service" in child.cmdline():
                return child
        except psutil.Error:  # exited (or a zombie) since the listing
            continue
    return None


def is_dead(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def dask_rows(stack, account: str) -> list[tuple[str, int]]:
    engine = sa.create_engine(stack.env.get("LENS_DB_URL") or f"sqlite:///{stack.state / 'lens.sqlite'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT ref, spent_delta FROM lens_entries WHERE account = :a AND category = 'dask' "
                "AND kind = 'record' ORDER BY id"), {"a": account}).all()
    finally:
        engine.dispose()
    return [(r[0], int(r[1])) for r in rows]


def spans_by_worker(rows) -> dict[str, list[tuple[int, int]]]:
    """The charged [start, end) spans per worker, from the refs dask:CLUSTER/WORKER:START-END."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for ref, _ in rows:
        who, _, span = ref.removeprefix("dask:").rpartition(":")
        worker = who.split("/", 1)[1]
        start, end = (int(x) for x in span.split("-"))
        spans.setdefault(worker, []).append((start, end))
    return {w: sorted(v) for w, v in spans.items()}


def usage(stack) -> dict:
    token = (stack.state / "secrets" / "dask-gateway.token").read_text().strip()
    url = f"http://127.0.0.1:{stack.env['LENS_GATEWAY_PORT']}/services/dask-gateway/api/v1/lens/usage"
    r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
    r.raise_for_status()
    return r.json()


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.5)


def test_dask_charges_survive_a_lens_service_crash(charging_stack):
    from tests.integration.test_gateway import gateway_for

    stack = charging_stack
    a, b = "chg-a", "chg-b"
    a_token, b_token = stack.create_user(a), stack.create_user(b)
    stack.spawn(a, "lab")  # creates the unix account the cluster runs as
    gw_a, gw_b = gateway_for(stack, a_token), gateway_for(stack, b_token)
    try:
        cluster = gw_a.new_cluster(worker_cores=1, worker_memory=1)
        cluster.scale(2)
        client = cluster.get_client()
        client.wait_for_workers(2, timeout=90)

        # charged while it runs: the user's own %costs data shows it
        def dask_spent():
            r = costs_of(stack, a_token)
            return r.status_code == 200 and r.json()["by_category"]["dask"]

        assert wait_for("dask > 0 in GET api/costs", dask_spent, 30) > 0

        # crash the lens service (SIGKILL, mid-whatever it was doing); the cluster keeps running
        proc = lens_service_proc(stack)
        assert proc is not None, "lens service process not found among the hub's children"
        killed_ms = int(time.time() * 1000)
        proc.send_signal(signal.SIGKILL)
        # dead, but the hub reaps it only on its next poll: a zombie until then
        wait_for("the lens service to die", lambda: is_dead(proc), 10)
        health = f"{stack.url}/services/lens/api/health"
        assert requests.get(health, timeout=10).status_code >= 500  # really down
        # JupyterHub restarts a managed service that exited (on its next poll, <= ~33 s)
        new = wait_for("JupyterHub to restart the lens service",
                       lambda: (p := lens_service_proc(stack)) and p.pid != proc.pid and p, 90)
        wait_for("the restarted service to answer",
                 lambda: requests.get(health, timeout=5).status_code in (200, 403), 60)
        back_ms = int(time.time() * 1000)
        assert back_ms - killed_ms > 2 * ACCRUE_SECONDS * 1000  # several windows were missed
        assert cluster.status == "running" and len(client.scheduler_info()["workers"]) == 2
        time.sleep(3 * ACCRUE_SECONDS)  # a few windows after the restart
        client.close()
        cluster.shutdown()

        # the gateway's own record of the workers' running time
        def stopped_workers():
            mine = [c for c in usage(stack)["clusters"] if c["name"] == cluster.name]
            workers = mine[0]["workers"] if mine else []
            done = len(workers) == 2 and all(w["stop_time"] for w in workers)
            return done and (mine[0], workers)

        record, workers = wait_for("the workers to stop", stopped_workers, 60)
        rate = record["rate_microusd_per_hour"]
        stop_of = {w["name"]: int(w["stop_time"]) for w in workers}
        start_of = {w["name"]: int(w["start_time"]) for w in workers}
        # ... until the charging has caught up with the last stop
        wait_for("charging to reach the workers' stop",
                 lambda: (s := spans_by_worker(dask_rows(stack, f"user:{a}")))
                 and all(w in s and stop_of[w] - s[w][-1][1] < 100 for w in stop_of), 60)
        rows = dask_rows(stack, f"user:{a}")
        spans = spans_by_worker(rows)
        assert set(spans) == set(stop_of)
        # One interval per worker spans the crash: the first window after the restart
        # started at the last watermark before it. Intervals are contiguous (no gap),
        # never overlap and no ref repeats (no double count).
        assert len({ref for ref, _ in rows}) == len(rows)
        report = {}
        for worker, got in spans.items():
            assert all(x[1] == y[0] for x, y in zip(got, got[1:], strict=False)), got
            assert any(s <= killed_ms and e >= back_ms for s, e in got), (worker, got, killed_ms, back_ms)
            actual = stop_of[worker] - start_of[worker]
            charged = sum(e - s for s, e in got)
            # A window's piece under 40 ms costs < 0.5 micro-USD at 45,000 micro-USD/h and
            # is dropped: at most at the start and at the end of a worker's life.
            assert 0 <= actual - charged <= 2 * 40, (worker, actual, charged)
            report[worker] = (actual, charged, len(got))
        total = sum(amount for _, amount in rows)
        charged_ms = sum(c for _, c, _ in report.values())
        assert abs(total - cost_microusd(rate, charged_ms)) <= len(rows)  # half-up rounding per row
        print(f"\ndask charging across a crash (down {back_ms - killed_ms} ms): "
              f"rate {rate} micro-USD/h, per worker (actual ms, charged ms, intervals) {report}, "
              f"charged {total} micro-USD vs {cost_microusd(rate, sum(x for x, _, _ in report.values()))} "
              f"for the actual time")
        assert new.is_running()

        # the user's report says the same as the ledger; nobody else sees it
        mine = costs_of(stack, a_token).json()
        assert mine["by_category"]["dask"] == total
        assert costs_of(stack, b_token, user=a).status_code == 403
        assert costs_of(stack, b_token).json()["by_category"]["dask"] == 0
        r = requests.get(f"{stack.url}/services/dask-gateway/api/v1/lens/costs",
                         headers={"Authorization": f"jupyterhub {b_token}"}, timeout=30)
        assert r.status_code == 200 and r.json()["clusters"] == []
    finally:
        gw_a.close()
        gw_b.close()
