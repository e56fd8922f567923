"""Benchmark: a Dask dashboard through lens's authenticating hop vs straight to the gateway's proxy.

One lens stack, one cluster of one user; in alternating rounds, the same requests
(the owner's hub token in every one) go
  - lens:   hub proxy -> lens service (owner check, streaming) -> gateway proxy -> scheduler
            (/services/dask-gateway/clusters/NAME/, what users get);
  - direct: hub proxy -> gateway proxy -> scheduler, i.e. what the hub's proxy did before the
            hop (a per-cluster route added to the hub's proxy for the run, removed after).
Measured: sequential GETs of /health (tiny) and /statics/images/python.png (about 11 KiB),
8 clients at once on /info/main/workers.html, and /eventstream websocket handshakes.
Ratios lens/direct of medians (latency) and of requests per second.

Run:  python benchmarks/dask_dashboard.py [--rounds 5] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
# benchmarks/dask_gateway.py would shadow the dask_gateway package: keep this folder off sys.path.
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

from benchmarks.spawn import pct, write_results  # noqa: E402
from tests.support.hub import make_stack  # noqa: E402

USER = "dashbench"


def sequential(session: requests.Session, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {r.status_code}")
    return out


def concurrent(url: str, token: str, clients: int, each: int) -> float:
    """Requests per second of CLIENTS keep-alive sessions doing EACH GETs."""
    def one(_):
        s = requests.Session()
        s.headers["Authorization"] = f"token {token}"
        for _ in range(each):
            if s.get(url, timeout=60).status_code != 200:
                raise RuntimeError(url)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    return clients * each / (time.perf_counter() - t0)


def handshakes(url: str, token: str, n: int) -> list[float]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    async def go():
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
            out.append((time.perf_counter() - t0) * 1000)
            conn.close()
        return out
    return asyncio.run(go())


def add_direct_route(hub, name: str) -> str:
    """A route for this one cluster straight to the gateway's proxy (more specific than the hop's)."""
    spec = f"/services/dask-gateway/clusters/{name}/"
    api = f"http://127.0.0.1:{hub.env['LENS_PROXY_API_PORT']}/api/routes{spec}"
    token = (hub.state / "secrets" / "proxy-auth.token").read_text().strip()
    r = requests.post(api, json={"target": f"http://127.0.0.1:{hub.env['LENS_GATEWAY_PORT']}"},
                      headers={"Authorization": f"token {token}"}, timeout=10)
    r.raise_for_status()
    return api


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100, help="sequential GETs per path and round")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from dask_gateway import Gateway
    from dask_gateway.auth import JupyterHubAuth

    work = Path(tempfile.mkdtemp(prefix="lens-dashboard-bench-"))
    work.chmod(0o711)
    hub = make_stack(work / "state")
    results: dict = {"rounds": args.rounds, "requests": args.requests, "clients": args.clients,
                     "load_before": os.getloadavg()}
    try:
        hub.start()
        token = hub.create_user(USER)
        r = hub.spawn(USER, "lab")  # as root this makes the unix account the cluster runs as
        if r.status_code not in (201, 202):
            raise RuntimeError(f"spawn: {r.status_code} {r.text}")
        gw = Gateway(address=f"{hub.url}/services/dask-gateway",
                     proxy_address=f"gateway://127.0.0.1:{hub.env['LENS_GATEWAY_PROXY_PORT']}",
                     auth=JupyterHubAuth(api_token=token))
        cluster = gw.new_cluster(shutdown_on_close=False)
        name = cluster.name
        base = cluster.dashboard_link.rsplit("/", 1)[0]
        cluster = None
        gc.collect()
        session = requests.Session()
        session.headers["Authorization"] = f"token {token}"
        data = {kind: {"health": [], "png": [], "rps": [], "ws": []} for kind in ("lens", "direct")}
        route = None
        for rnd in range(args.rounds):
            order = ("lens", "direct") if rnd % 2 == 0 else ("direct", "lens")
            for kind in order:
                if kind == "direct":
                    route = add_direct_route(hub, name)
                elif route:
                    requests.delete(route, timeout=10, headers={
                        "Authorization": f"token {(hub.state / 'secrets' / 'proxy-auth.token').read_text().strip()}"})
                    route = None
                sequential(session, f"{base}/health", 5)  # warm-up (and the owner cache)
                d = data[kind]
                d["health"] += sequential(session, f"{base}/health", args.requests)
                d["png"] += sequential(session, f"{base}/statics/images/python.png", args.requests)
                d["rps"].append(concurrent(f"{base}/info/main/workers.html", token, args.clients, 25))
                d["ws"] += handshakes(f"{base.replace('http', 'ws', 1)}/eventstream", token, 20)
        if route:
            requests.delete(route, timeout=10, headers={
                "Authorization": f"token {(hub.state / 'secrets' / 'proxy-auth.token').read_text().strip()}"})
        gw.stop_cluster(name)
        gw.close()
        hub.stop_server(USER)
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.rounds} alternating rounds; load average before {results['load_before']}")
    print(f"{'measure':34} {'lens':>10} {'direct':>10} {'ratio':>7}")
    for key, label in (("health", "GET /health p50 ms"), ("png", "GET python.png p50 ms"), ("ws", "websocket handshake p50 ms")):
        lens, direct = statistics.median(data["lens"][key]), statistics.median(data["direct"][key])
        p95 = pct(data["lens"][key], 95), pct(data["direct"][key], 95)
        results[key] = {"lens_p50": lens, "direct_p50": direct, "ratio": lens / direct,
                        "lens_p95": p95[0], "direct_p95": p95[1]}
        print(f"{label:34} {lens:10.2f} {direct:10.2f} {lens / direct:7.2f}")
        print(f"{label.replace('p50', 'p95'):34} {p95[0]:10.2f} {p95[1]:10.2f} {p95[0] / p95[1]:7.2f}")
    lens, direct = statistics.median(data["lens"]["rps"]), statistics.median(data["direct"]["rps"])
    results["rps"] = {"lens": lens, "direct": direct, "ratio": lens / direct}
    print(f"{f'{args.clients} clients, requests/s':34} {lens:10.1f} {direct:10.1f} {lens / direct:7.2f}")
    write_results(results, "dask_dashboard", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
