"""Benchmark: Dask Gateway through lens's configuration vs a bare dask-gateway-server.

Measured side by side in one run (alternating rounds):
  1. time to cluster ready, and to 2 workers ready:
     lens = hub_config/dask_gateway_config.py (JupyterHub auth against a real hub,
     limits, budget check against a local HTTP budget server, clusters as a unix
     user when run as root) vs a bare dask-gateway-server (SimpleAuthenticator,
     UnsafeLocalBackend, only scheduler_cmd/worker_cmd set). Target ratio <= 1.1.
  2. Zarr read throughput from the S3 endpoint (moto's server): a 2-worker
     Gateway cluster vs a single process (dask threads scheduler).

Run:  python benchmarks/dask_gateway.py [--rounds 5] [--zarr-mb 256]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file is named like the package it measures: keep its folder off sys.path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

from dask_gateway import Gateway  # noqa: E402
from dask_gateway.auth import BasicAuth, JupyterHubAuth  # noqa: E402

from jupyter_ext.kernel import dask_client_fix as client_fix  # noqa: E402
from tests.dask import support  # noqa: E402
from tests.support import moto as moto_support  # noqa: E402

client_fix.install()

BARE_CONFIG = """
import os, sys
c = get_config()
bindir = os.path.dirname(sys.executable)
c.ClusterConfig.scheduler_cmd = [os.path.join(bindir, "dask"), "scheduler"]
c.ClusterConfig.worker_cmd = [os.path.join(bindir, "dask"), "worker"]
c.DaskGateway.address = "127.0.0.1:0"
c.Proxy.address = "127.0.0.1:" + os.environ["LENS_GATEWAY_PORT"]
c.Proxy.tcp_address = "127.0.0.1:" + os.environ["LENS_GATEWAY_PROXY_PORT"]
c.Proxy.prefix = "/services/dask-gateway"
c.ClusterConfig.worker_memory = "1 G"
c.ClusterConfig.scheduler_memory = "0.5 G"
"""

LENS_EXTRA = """
c.GatewaySettings.default_worker_memory_gib = 1
c.ClusterConfig.scheduler_memory = "0.5 G"
"""


def time_cluster(gw: Gateway) -> tuple[float, float]:
    t0 = time.perf_counter()
    cluster = gw.new_cluster()
    t_ready = time.perf_counter() - t0
    cluster.scale(2)
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=120)
    t_workers = time.perf_counter() - t0
    client.close()
    cluster.shutdown()
    gc.collect()
    return t_ready, t_workers


def zarr_throughput(gw: Gateway, endpoint: str, mb: int) -> tuple[float, float, float]:
    import dask.array as da
    import xarray as xr

    url = "s3://lens-bench/bench.zarr"
    n = int(mb * 2**20 / 4 / (180 * 360))
    arr = da.random.default_rng(0).standard_normal((n, 180, 360), chunks=(128, 180, 360)).astype("float32")
    xr.Dataset({"tas": (("time", "lat", "lon"), arr)}).to_zarr(url, mode="w", consolidated=True)
    nbytes = n * 180 * 360 * 4
    # single process (dask threads in this process)
    xr.open_zarr(url).tas.isel(time=slice(0, 256)).sum().compute(scheduler="threads")
    t0 = time.perf_counter()
    float(xr.open_zarr(url).tas.sum().compute(scheduler="threads"))
    single = nbytes / 1e6 / (time.perf_counter() - t0)
    # 2-worker cluster
    cluster = gw.new_cluster()
    cluster.scale(2)
    client = cluster.get_client()
    client.wait_for_workers(2, timeout=120)
    # warm the workers (imports, S3 sessions) as the single process already is
    client.compute(xr.open_zarr(url).tas.isel(time=slice(0, 256)).sum(), sync=True)
    t0 = time.perf_counter()
    float(client.compute(xr.open_zarr(url).tas.sum(), sync=True))
    dist = nbytes / 1e6 / (time.perf_counter() - t0)
    client.close()
    cluster.shutdown()
    return nbytes / 1e6, single, dist


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--zarr-mb", type=int, default=256)
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="lens-dask-bench-")
    os.chmod(state, 0o755)
    user = f"bench{os.getpid() % 100000}"
    as_root = support.have_root()
    ctx = support.unix_users([f"jupyter-{user}"]) if as_root else _null()
    with moto_support.moto_server() as endpoint, ctx, support.BudgetServer() as budget:
        aws = moto_support.aws_env(endpoint)
        os.environ.update(aws)
        import boto3

        boto3.client("s3").create_bucket(Bucket="lens-bench")
        lens = support.GatewayProc(os.path.join(state, "lens"), extra_config=LENS_EXTRA)
        hub = support.Hub(os.path.join(state, "hub"), lens.port).start()
        lens.env = {
            "JUPYTERHUB_API_TOKEN": hub.gateway_token,
            "JUPYTERHUB_API_URL": hub.api_url,
            "LENS_SERVICE_URL": budget.url,
            **aws,
            **{f"LENS_WORKER_{k}": v for k, v in aws.items() if "KEY" in k},
        }
        bare_cfg = os.path.join(state, "bare_config.py")
        os.makedirs(state, exist_ok=True)
        with open(bare_cfg, "w") as f:
            f.write(BARE_CONFIG)
        bare = support.GatewayProc(os.path.join(state, "bare"), config_file=bare_cfg, env=aws)
        try:
            lens.start()
            bare.start()
            hub.create_user(user)
            token = hub.token(user, [support.SERVICE_SCOPE])
            gw_lens = Gateway(lens.url, proxy_address=lens.proxy_address, auth=JupyterHubAuth(token))
            gw_bare = Gateway(bare.url, proxy_address=bare.proxy_address, auth=BasicAuth(user))
            time_cluster(gw_lens)  # warm-up both (imports, page cache)
            time_cluster(gw_bare)
            res = {"lens": [], "bare": []}
            for _ in range(args.rounds):
                res["bare"].append(time_cluster(gw_bare))
                res["lens"].append(time_cluster(gw_lens))
            med = {
                k: (statistics.median(r for r, _ in v), statistics.median(w for _, w in v))
                for k, v in res.items()
            }
            print(f"\nDask Gateway start-up, median of {args.rounds} alternating rounds "
                  f"(lens clusters run as {'a unix user (root gateway)' if as_root else 'the gateway user'})")
            print(f"{'metric':<28}{'lens (s)':>10}{'bare (s)':>10}{'ratio':>8}")
            for i, name in enumerate(["cluster ready", "2 workers ready"]):
                lv, bv = med["lens"][i], med["bare"][i]
                print(f"{name:<28}{lv:>10.2f}{bv:>10.2f}{lv / bv:>8.2f}")
            mb, single, dist = zarr_throughput(gw_lens, endpoint, args.zarr_mb)
            print(f"\nZarr read from S3 (moto), {mb:.0f} MB float32, sum over all chunks")
            print(f"{'reader':<28}{'MB/s':>10}{'ratio':>8}")
            print(f"{'single process (threads)':<28}{single:>10.1f}{1.0:>8.2f}")
            print(f"{'2-worker Gateway cluster':<28}{dist:>10.1f}{dist / single:>8.2f}")
            gw_lens.close()
            gw_bare.close()
        finally:
            lens.stop()
            bare.stop()
            hub.stop()
    return 0


class _null:
    def __enter__(self):
        return []

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
