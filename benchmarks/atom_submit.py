"""Benchmark: a 1,000-member ensemble as ONE array submission vs a naive loop of 1,000
single submissions (the slurm-magic way), on Slurm and on AWS Batch (moto's server), plus
the backend calls needed to refresh the status of 1,000 jobs.

Run from the repository root (as root for Slurm, which must be up or startable):
    PYTHONPATH=$PWD /tmp/venvtest/v/bin/python benchmarks/atom_submit.py [--n 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_ext.atom.backends.base import JobRef, Submission  # noqa: E402
from jupyter_ext.atom.spec import parse_spec  # noqa: E402

BENCH_USER = "atombench"


def submission(i: int, spec) -> Submission:
    return Submission(f"j-{i:012x}", BENCH_USER, ("bench",), spec,
                      tags={"lens:user": BENCH_USER, "lens:group": "bench", "lens:job": f"j-{i:012x}",
                            "lens:project": "bench"}, env={"LENS_JOB_ID": f"j-{i:012x}"})


async def measure(backend, n: int, spec_array, spec_single, submitted: list[str]):
    """Submit as one array, then as n singles; then refresh n singles and the array."""
    rows = {}
    if hasattr(backend, "ensure_definition"):  # register the job definition up front
        backend.ensure_definition(submission(0, spec_single))
    backend.calls.clear()
    t = time.perf_counter()
    array_id = await backend.submit(submission(0, spec_array))
    submitted.append(array_id)
    rows["array"] = (time.perf_counter() - t, sum(backend.calls.values()), dict(backend.calls))
    backend.calls.clear()
    t = time.perf_counter()
    ids = []
    for i in range(n):
        ids.append(await backend.submit(submission(i + 1, spec_single)))
        submitted.append(ids[-1])
    rows["loop"] = (time.perf_counter() - t, sum(backend.calls.values()), dict(backend.calls))
    refs = [JobRef(b, f"j-{i + 1:012x}", BENCH_USER) for i, b in enumerate(ids)]
    backend.calls.clear()
    t = time.perf_counter()
    got = await backend.status(refs)
    states = collections.Counter(st.state for st in got.values())
    rows["status_singles"] = (time.perf_counter() - t, sum(backend.calls.values()),
                              {**backend.calls, "jobs by state": dict(states)})
    backend.calls.clear()
    t = time.perf_counter()
    got = await backend.status([JobRef(array_id, "j-000000000000", BENCH_USER, n)])
    rows["status_array"] = (time.perf_counter() - t, sum(backend.calls.values()),
                            {**backend.calls, "members by state": got[array_id].counts})
    return rows


def slurm_conf() -> str | None:
    conf = os.environ.get("SLURM_CONF", "")
    if conf and subprocess.run(["sinfo", "-h"], env={**os.environ, "SLURM_CONF": conf},
                               capture_output=True).returncode == 0:
        return conf
    if os.geteuid() != 0:
        return None
    out = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-up.sh"),
                          os.environ.get("LENS_STATE_DIR", "/tmp/slurmtest")],
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else None


def prepare_slurm_user() -> str:
    if os.geteuid() == 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        f"jupyter-{BENCH_USER}"], capture_output=True)
    state = tempfile.mkdtemp(prefix="lens-atom-bench-", dir="/tmp")
    os.chmod(state, 0o711)
    return state


def cleanup_slurm(ids: list[str], conf: str, state: str) -> None:
    """Cancel what is left, by our own job ids only."""
    env = {"PATH": "/usr/bin:/bin", "SLURM_CONF": conf}
    for i in range(0, len(ids), 200):
        subprocess.run(["scancel", *ids[i:i + 200]], env=env, capture_output=True)
    shutil.rmtree(state, ignore_errors=True)


def prepare_moto(url: str, ensure_dev_queues, moto_support) -> dict[str, str]:
    requests.post(f"{url}/moto-api/config", json={"batch": {"use_docker": False}},
                  timeout=10).raise_for_status()
    os.environ.update(moto_support.aws_env(url))
    return ensure_dev_queues(endpoint_url=url)


async def bench_slurm(n: int):
    from jupyter_ext.atom.backends.slurm import SlurmBackend

    conf = slurm_conf()
    if not conf:
        print("slurm: not available (needs root and slurm-wlm)", file=sys.stderr)
        return None
    state = prepare_slurm_user()
    backend = SlurmBackend(state_dir=state, slurm_conf=conf, partition_map={"*": "debug"})
    spec_array = parse_spec({"name": "ens", "command": ["true"], "array": n, "walltime": 60,
                             "memory": "16Mi"})
    spec_single = parse_spec({"name": "one", "command": ["true"], "walltime": 60,
                              "memory": "16Mi"})
    ids: list[str] = []
    try:
        rows = await measure(backend, n, spec_array, spec_single, ids)
    finally:
        cleanup_slurm(ids, conf, state)
    return rows


async def bench_batch(n: int):
    from jupyter_ext.atom.backends.batch import BatchBackend
    from jupyter_ext.atom.batch_infra import ensure_dev_queues
    from tests.support import moto as moto_support

    with moto_support.moto_server() as url:
        queues = prepare_moto(url, ensure_dev_queues, moto_support)
        backend = BatchBackend(queues=queues, endpoint_url=url)
        spec_array = parse_spec({"name": "ens", "command": ["true"], "array": n})
        spec_single = parse_spec({"name": "one", "command": ["true"]})
        rows = await measure(backend, n, spec_array, spec_single, [])
    return rows


def report(name: str, rows, n: int) -> None:
    print(f"\n{name}: {n}-member ensemble")
    print(f"  {'what':<34}{'wall s':>10}{'backend calls':>15}  detail")
    labels = {"array": "one array submission", "loop": f"naive loop of {n} submissions",
              "status_singles": f"refresh status of {n} single jobs",
              "status_array": f"refresh status of the {n}-array"}
    for key, label in labels.items():
        wall, calls, detail = rows[key]
        print(f"  {label:<34}{wall:>10.3f}{calls:>15}  {detail}")
    a, loop = rows["array"], rows["loop"]
    print(f"  ratio loop/array: wall x{loop[0] / a[0]:.0f}, calls x{loop[1] / max(1, a[1]):.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--only", choices=("slurm", "batch"))
    args = parser.parse_args()
    if args.only != "batch":
        rows = await bench_slurm(args.n)
        if rows:
            report("Slurm 22.05 (sbatch/squeue/sacct)", rows, args.n)
    if args.only != "slurm":
        report("AWS Batch on moto (boto3)", await bench_batch(args.n), args.n)


if __name__ == "__main__":
    asyncio.run(main())
