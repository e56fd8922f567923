"""Archive benchmark: lens vs restic 0.14, borg 1.2 and `tar | zstd -3`, side by side.

    python benchmarks/archive.py                 # ~2 GB dataset (the reported run)
    python benchmarks/archive.py --size-gb 0.2   # quick run
    python benchmarks/archive.py --keep DIR      # reuse/keep the work directory

Generates mixed research data (netCDF float arrays, Zarr, CSV/text, already
compressed files), archives it with every tool, changes ~10 % of it, archives the
second version, restores it, and reports MB/s, repository size, peak RSS and the
ratios against restic. Then archives the first version to S3 (moto's standalone
server) in GLACIER and plans + runs the restore of one 10 MB file, reporting the
packs and bytes that had to be thawed.

Every tool runs as a subprocess; peak RSS is its ru_maxrss from wait4. The data
sits in the page cache for every tool alike (2 cores, shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PY = sys.executable
MB = 1e6


# ----------------------------------------------------------------------------- data
def _floats(rng, shape):
    """Smooth fields + noise, like model output (compresses a little under zstd)."""
    t = np.linspace(0, 8 * np.pi, shape[-1], dtype=np.float32)
    base = np.sin(t)[None, :] * 10 + 280
    noise = rng.standard_normal(shape, dtype=np.float32)
    return (base + noise).astype(np.float32)


def _netcdf(path, rng, nbytes):
    import netCDF4

    nx = 512
    ny = max(1, nbytes // (4 * nx * 4))
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", None)
        ds.createDimension("y", 4)
        ds.createDimension("x", nx)
        v = ds.createVariable("tas", "f4", ("time", "y", "x"))
        v.units = "K"
        v[:] = _floats(rng, (ny, 4, nx))


def _text(path, rng, nbytes):
    tokens = np.array([f"{x:10.4f}".encode() for x in rng.normal(280, 15, 5000)], dtype="S10")
    cols = 8
    rows = max(1, nbytes // (cols * 11))
    idx = rng.integers(0, len(tokens), size=(rows, cols))
    cells = tokens[idx].view(np.uint8).reshape(rows, cols, 10)
    sep = np.full((rows, cols, 1), ord(","), dtype=np.uint8)
    sep[:, -1, 0] = ord("\n")
    with open(path, "wb") as f:
        f.write(b"a,b,c,d,e,f,g,h\n")
        f.write(np.concatenate([cells, sep], axis=2).tobytes())


def _random(path, rng, nbytes):
    with open(path, "wb") as f:
        f.write(rng.bytes(nbytes))


def _zarr(path, rng, nbytes):
    import zarr

    n = max(1, nbytes // (4 * 256 * 256))
    z = zarr.open_array(path, mode="w", shape=(n, 256, 256), chunks=(8, 256, 256), dtype="f4")
    step = 64
    for i in range(0, n, step):
        z[i:i + step] = _floats(rng, (min(step, n - i), 256, 256))


def generate(root: str, total: int, seed: int = 1) -> dict:
    """~40 % netCDF, 20 % Zarr, 20 % CSV/text, 20 % already-compressed."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    layout = {"nc": 0.40, "zarr": 0.20, "csv": 0.20, "packed": 0.20}
    big = max(8 * 2**20, total // 40)
    made = {}
    os.makedirs(f"{root}/nc", exist_ok=True)
    budget = int(total * layout["nc"])
    _netcdf(f"{root}/nc/station_target.nc", rng, 10 * 2**20)  # the 10 MB partial-restore file
    i, left = 0, budget - 10 * 2**20
    while left > 0:
        size = min(big, left)
        _netcdf(f"{root}/nc/run_{i:03d}.nc", rng, size)
        left -= size
        i += 1
    _zarr(f"{root}/model.zarr", rng, int(total * layout["zarr"]))
    os.makedirs(f"{root}/csv", exist_ok=True)
    left, i = int(total * layout["csv"]), 0
    while left > 0:
        size = min(big // 2, left)
        _text(f"{root}/csv/obs_{i:03d}.csv", rng, size)
        left -= size
        i += 1
    os.makedirs(f"{root}/packed", exist_ok=True)
    left, i = int(total * layout["packed"]), 0
    while left > 0:
        size = min(big // 4, left)
        _random(f"{root}/packed/img_{i:03d}.jpg", rng, size)
        left -= size
        i += 1
    made["bytes"] = du(root)
    return made


def mutate(root: str, seed: int = 2) -> int:
    """Change ~10 % of the bytes: edit netCDF slabs, rewrite Zarr chunks, append to
    CSVs, add and delete files. Returns the bytes written."""
    import netCDF4
    import zarr

    rng = np.random.default_rng(seed)
    total, written = du(root), 0
    ncs = sorted(p for p in os.listdir(f"{root}/nc") if p.startswith("run_"))
    for name in ncs[::8]:
        with netCDF4.Dataset(f"{root}/nc/{name}", "a") as ds:
            v = ds["tas"]
            n = v.shape[0]
            a = n // 3
            b = a + max(1, n // 10)
            v[a:b] = _floats(rng, (b - a, v.shape[1], v.shape[2]))
            written += (b - a) * v.shape[1] * v.shape[2] * 4
    z = zarr.open_array(f"{root}/model.zarr", mode="r+")
    k = max(1, z.shape[0] // 20)
    z[:k] = _floats(rng, (k, 256, 256))
    written += k * 256 * 256 * 4
    csvs = sorted(os.listdir(f"{root}/csv"))
    for name in csvs[::5]:
        extra = os.path.getsize(f"{root}/csv/{name}") // 10
        tmp = f"{root}/csv/.{name}.extra"
        _text(tmp, rng, extra)
        with open(f"{root}/csv/{name}", "ab") as out, open(tmp, "rb") as f:
            out.write(f.read())
        os.unlink(tmp)
        written += extra
    packed = sorted(os.listdir(f"{root}/packed"))
    for name in packed[:2]:
        os.unlink(f"{root}/packed/{name}")
    want = int(total * 0.10) - written
    if want > 0:
        _random(f"{root}/packed/new_000.jpg", rng, want)
        written += want
    return written


def du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return total


# ----------------------------------------------------------------------------- runs
class PeakRSS:
    """Sample VmHWM of processes (it restarts at exec, unlike ru_maxrss after a fork
    from this large process) every 20 ms until they exit."""

    def __init__(self, *pids):
        import threading

        self.pids, self.peak, self.stop = pids, {p: 0 for p in pids}, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            for pid in self.pids:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                kb = int(line.split()[1])
                                self.peak[pid] = max(self.peak[pid], kb * 1024)
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    pass
            self.stop.wait(0.02)

    def done(self) -> int:
        self.stop.set()
        self.thread.join()
        return max(self.peak.values())


def run(argv, env=None, cwd=None, stdin=None, stdout=None) -> tuple[float, int]:
    """Run one process; return (seconds, peak RSS in bytes)."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=cwd, stdin=stdin,
                            stdout=stdout if stdout is not None else subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    rss = PeakRSS(proc.pid)
    _, status, _usage = os.wait4(proc.pid, 0)
    peak = rss.done()
    took = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return took, peak


def pipeline(first, second, env=None) -> tuple[float, int]:
    """``first | second``; peak RSS is the larger of the two."""
    t = time.perf_counter()
    a = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env={**os.environ, **(env or {})})
    b = subprocess.Popen(second, stdin=a.stdout, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    a.stdout.close()
    rss = PeakRSS(a.pid, b.pid)
    _, sb, _ub = os.wait4(b.pid, 0)
    _, sa, _ua = os.wait4(a.pid, 0)
    peak = rss.done()
    if os.waitstatus_to_exitcode(sa) or os.waitstatus_to_exitcode(sb):
        raise RuntimeError(f"pipeline {first[0]} | {second[0]} failed")
    return time.perf_counter() - t, peak


class Tool:
    name = ""

    def __init__(self, work):
        self.repo = os.path.join(work, f"repo-{self.name}")
        self.work = work


class Lens(Tool):
    name = "lens"

    def _cli(self, *args):
        return [PY, "-m", "jupyter_ext.cli.main", "archive", *args, "--repo", self.repo,
                "--owner", "user:bench", "--no-progress"]

    def init(self):
        pass

    def backup(self, src, tag):
        env = {"PYTHONPATH": ROOT, "USER": "bench", "LOGNAME": "bench"}
        return run(self._cli("create", src, "--name", "dataset", "--tag", f"v={tag}"),
                   env=env, cwd=ROOT)

    def restore(self, dest):
        env = {"PYTHONPATH": ROOT, "USER": "bench", "LOGNAME": "bench"}
        return run(self._cli("restore", "dataset", "--to", dest), env=env, cwd=ROOT)


class Restic(Tool):
    name = "restic"

    @property
    def env(self):
        return {"RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": self.repo,
                "RESTIC_CACHE_DIR": os.path.join(self.work, "restic-cache")}

    def init(self):
        run(["restic", "init", "--repository-version", "2"], env=self.env)

    def backup(self, src, tag):
        return run(["restic", "backup", "--compression", "auto", "--tag", tag, src],
                   env=self.env)

    def restore(self, dest):
        return run(["restic", "restore", "latest", "--target", dest], env=self.env)


class Borg(Tool):
    name = "borg"

    @property
    def env(self):
        return {"BORG_BASE_DIR": os.path.join(self.work, "borg-base"),
                "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
                "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}

    def init(self):
        run(["borg", "init", "-e", "none", self.repo], env=self.env)

    def backup(self, src, tag):
        return run(["borg", "create", "--compression", "zstd,3", f"{self.repo}::{tag}", src],
                   env=self.env)

    def restore(self, dest):
        os.makedirs(dest, exist_ok=True)
        return run(["borg", "extract", f"{self.repo}::v2"], env=self.env, cwd=dest)


class TarZstd(Tool):
    name = "tar|zstd-3"

    def init(self):
        os.makedirs(self.repo, exist_ok=True)

    def backup(self, src, tag):
        out = os.path.join(self.repo, f"{tag}.tar.zst")
        return pipeline(["tar", "-C", os.path.dirname(src), "-cf", "-", os.path.basename(src)],
                        ["zstd", "-3", "-T2", "-q", "-f", "-o", out])

    def restore(self, dest):
        os.makedirs(dest, exist_ok=True)
        return pipeline(["zstd", "-d", "-q", "-c", os.path.join(self.repo, "v2.tar.zst")],
                        ["tar", "-C", dest, "-xf", "-"])


def glacier_partial(src: str, work: str) -> dict:
    """Archive v1 to moto S3 in GLACIER; plan and restore the 10 MB file."""
    from jupyter_ext.archive.engine import ArchiveEngine
    from jupyter_ext.archive.repository import Principal
    from tests.support.moto import aws_env, moto_server

    who = Principal("bench")
    with moto_server() as url:
        os.environ.update(aws_env(url))
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        eng = ArchiveEngine(repository="s3://bench/lens", poll_interval=0.2)
        t = time.perf_counter()
        eng.create([src], owner="bench", principal=who, name="dataset",
                   storage_class="GLACIER")
        upload = time.perf_counter() - t
        target = f"{os.path.basename(src)}/nc/station_target.nc"
        plan = eng.plan("dataset", [target], owner="bench", principal=who)
        dest = os.path.join(work, "glacier-out")
        t = time.perf_counter()
        res = eng.restore("dataset", [target], target=dest, owner="bench", principal=who,
                          timeout=600)
        took = time.perf_counter() - t
        thawed = res["state"]["thaw_requested"]
        ok = (open(os.path.join(dest, target), "rb").read()
              == open(os.path.join(os.path.dirname(src), target), "rb").read())
        return {"upload_s": upload, "file_bytes": os.path.getsize(os.path.join(dest, target)),
                "packed_bytes": plan.bytes_to_read, "packs_thawed": len(thawed),
                "bytes_thawed": plan.thaw_bytes, "total_packs": len(eng.repo(
                    "bench", who).packs), "restore_s": took, "identical": ok,
                "estimates": [e.as_dict() for e in plan.estimates]}


def fmt_row(cols, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                     for i, (c, w) in enumerate(zip(cols, widths, strict=True)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=2.0, help="dataset size (default 2)")
    ap.add_argument("--keep", help="work directory to use and keep")
    ap.add_argument("--tools", default="lens,restic,borg,tar", help="comma list")
    ap.add_argument("--no-glacier", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="best of N for the first archive and the restore")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    for exe in ("restic", "borg", "zstd", "tar"):
        if not shutil.which(exe):
            print(f"missing {exe}: apt-get install restic borgbackup zstd", file=sys.stderr)
            return 1
    work = args.keep or tempfile.mkdtemp(prefix="lens-bench-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "dataset")
    try:
        if not os.path.isdir(src):
            t = time.perf_counter()
            generate(src, int(args.size_gb * 1e9))
            print(f"generated {du(src) / MB:,.0f} MB in {time.perf_counter() - t:.0f}s",
                  flush=True)
        size1 = du(src)
        chosen = {"lens": Lens, "restic": Restic, "borg": Borg, "tar": TarZstd}
        tools = [chosen[n](work) for n in args.tools.split(",")]
        res = {t.name: {} for t in tools}
        # first version
        glacier = None
        if not args.no_glacier and "lens" in res:
            glacier = glacier_partial(src, work)
        # --repeat N: the first archive and the restore run N times in rotating tool
        # order (fresh repositories each time); the best time counts, which damps the
        # noise of a shared machine.
        for r in range(args.repeat):
            for t in tools[r % len(tools):] + tools[:r % len(tools)]:
                shutil.rmtree(t.repo, ignore_errors=True)
                t.init()
                s, rss = t.backup(src, "v1")
                best = res[t.name].get("first_s")
                if best is None or s < best:
                    res[t.name].update(first_s=s)
                res[t.name]["first_rss"] = max(rss, res[t.name].get("first_rss", 0))
                print(f"{t.name}: first {size1 / MB / s:,.1f} MB/s", flush=True)
        changed = mutate(src)
        size2 = du(src)
        print(f"changed {changed / MB:,.0f} MB of {size2 / MB:,.0f} MB", flush=True)
        for t in tools:
            s, rss = t.backup(src, "v2")
            res[t.name].update(second_s=s, second_rss=rss, repo=du(t.repo))
            print(f"{t.name}: second {size2 / MB / s:,.1f} MB/s", flush=True)
        for r in range(args.repeat):
            for t in tools[r % len(tools):] + tools[:r % len(tools)]:
                dest = os.path.join(work, f"restore-{t.name.replace('|', '-')}")
                shutil.rmtree(dest, ignore_errors=True)
                s, rss = t.restore(dest)
                best = res[t.name].get("restore_s")
                if best is None or s < best:
                    res[t.name].update(restore_s=s)
                res[t.name]["restore_rss"] = max(rss, res[t.name].get("restore_rss", 0))
                shutil.rmtree(dest, ignore_errors=True)
                print(f"{t.name}: restore {size2 / MB / s:,.1f} MB/s", flush=True)
        base = res.get("restic")
        widths = (11, 11, 8, 11, 8, 11, 8, 11, 8, 10)
        print()
        load = os.getloadavg()[0]
        print(f"dataset: v1 {size1 / MB:,.0f} MB, v2 {size2 / MB:,.0f} MB "
              f"({changed / MB:,.0f} MB changed); {os.cpu_count()} cores, load {load:.1f}; "
              f"best of {args.repeat} for 1st and restore")
        print(fmt_row(("tool", "1st MB/s", "x restic", "2nd MB/s", "x restic", "repo MB",
                       "x restic", "restore MB/s", "x restic", "peak RSS"), widths))
        for name, r in res.items():
            f1, f2, rr = size1 / MB / r["first_s"], size2 / MB / r["second_s"], \
                size2 / MB / r["restore_s"]
            rss = max(r["first_rss"], r["second_rss"], r["restore_rss"]) / MB

            def ratio(key, inverse=False, r=r):
                if not base:
                    return "-"
                if inverse:
                    return f"{r[key] / base[key]:.2f}"
                return f"{base[key] / r[key]:.2f}"

            r.update(first_mb_s=f1, second_mb_s=f2, restore_mb_s=rr, peak_rss_mb=rss)
            print(fmt_row((name, f"{f1:,.1f}", ratio("first_s"), f"{f2:,.1f}",
                           ratio("second_s"), f"{r['repo'] / MB:,.1f}", ratio("repo", True),
                           f"{rr:,.1f}", ratio("restore_s"), f"{rss:,.0f} MB"), widths))
        if glacier:
            print()
            print(f"partial restore from GLACIER (moto): 1 file of "
                  f"{glacier['file_bytes'] / MB:.1f} MB, packed {glacier['packed_bytes'] / MB:.1f}"
                  f" MB; thawed {glacier['packs_thawed']} of {glacier['total_packs']} packs, "
                  f"{glacier['bytes_thawed'] / MB:.1f} MB = "
                  f"{glacier['bytes_thawed'] / glacier['packed_bytes']:.2f}x the packed size; "
                  f"identical={glacier['identical']}; restore {glacier['restore_s']:.1f}s "
                  f"(upload of v1 to moto {glacier['upload_s']:.0f}s)")
            for e in glacier["estimates"]:
                print(f"  {e['tier']:10} ${e['cost_micro'] / 1e6:.6f}  {e['hours'][0]:g}-"
                      f"{e['hours'][1]:g} h")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size1": size1, "size2": size2, "changed": changed, "tools": res,
                           "glacier": glacier}, f, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
