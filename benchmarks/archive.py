"""Archive benchmark: lens vs restic 0.14, borg 1.2 and `tar | zstd -3`, side by side.

    python benchmarks/archive.py                       # ~2 GB + 100,000 small files
    python benchmarks/archive.py --size-gb 0.2 --small-files 10000   # quick run
    python benchmarks/archive.py --data DIR            # your own folder (copied first)
    python benchmarks/archive.py --keep DIR            # reuse/keep the work directory

The generated dataset is mixed research data (float32 model fields, Zarr, CSV/text,
already compressed files) plus many small files (200 B - 16 KiB; a third text, the
rest half random, half zeros). ``--data DIR`` copies DIR instead. Every tool
archives v1, then a v2 of mixed changes (fields rewritten, text appended to, a
same-size rewrite with its mtime set back, files added and deleted) under a
different archive name, then restores v2 into an empty folder and again over that
copy. It reports MB/s, repository size and peak RSS, and every ratio against
restic, borg and tar|zstd from the same run. Then (generated data) it archives v1
to S3 (moto's standalone server) in GLACIER and plans + runs the restore of one
10 MB file, reporting the packs and bytes that had to be thawed.

Every tool runs as a subprocess with its default settings; peak RSS is the sum of
the VmHWM of its processes (the ones it starts included). The data sits in the
page cache for every tool alike, and every archive starts after a ``sync``: the
tool that runs first does not pay for the writes of the copy or of the changes
(lens runs first; on trees of small files that cost it a quarter of its speed). Missing restic/borg/zstd are installed from
Debian when run as root (scripts/apt-ensure.sh).
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


def _fields(path, rng, nbytes):
    """Raw float32 model fields (time x 4 x 512) after a 64-byte header, like the
    variables of a netCDF file without its dependency."""
    nx = 512
    ny = max(1, nbytes // (4 * nx * 4))
    with open(path, "wb") as f:
        f.write(f"lens-bench f4 {ny} 4 {nx}".encode().ljust(64))
        f.write(_floats(rng, (ny, 4, nx)).tobytes())


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
    """~40 % float32 fields, 20 % Zarr, 20 % CSV/text, 20 % already-compressed."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    layout = {"nc": 0.40, "zarr": 0.20, "csv": 0.20, "packed": 0.20}
    big = max(8 * 2**20, total // 40)
    made = {}
    os.makedirs(f"{root}/nc", exist_ok=True)
    budget = int(total * layout["nc"])
    _fields(f"{root}/nc/station_target.f32", rng, 10 * 2**20)  # the 10 MB partial restore
    i, left = 0, budget - 10 * 2**20
    while left > 0:
        size = min(big, left)
        _fields(f"{root}/nc/run_{i:03d}.f32", rng, size)
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
    """Change ~10 % of the bytes: edit field slabs, rewrite Zarr chunks, append to
    CSVs, add and delete files. Returns the bytes written."""
    import zarr

    rng = np.random.default_rng(seed)
    total, written = du(root), 0
    ncs = sorted(p for p in os.listdir(f"{root}/nc") if p.startswith("run_"))
    for name in ncs[::8]:
        path = f"{root}/nc/{name}"
        n = (os.path.getsize(path) - 64) // (4 * 512 * 4)
        a = n // 3
        b = a + max(1, n // 10)
        with open(path, "r+b") as f:  # rewrite a slab of time steps in place
            f.seek(64 + a * 4 * 512 * 4)
            f.write(_floats(rng, (b - a, 4, 512)).tobytes())
        written += (b - a) * 4 * 512 * 4
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


def small_files(root: str, count: int, seed: int = 3) -> None:
    """``count`` files of 200 B - 16 KiB, 500 a folder: a third text, the rest half
    random, half zeros."""
    rng = np.random.default_rng(seed)
    words = [w.encode() for w in (
        "the of and data model run grid temperature pressure value station lens "
        "archive ensemble member forcing output mean anomaly").split()]
    for i in range(count):
        d = f"{root}/small/d{i // 500:04d}"
        if i % 500 == 0:
            os.makedirs(d, exist_ok=True)
        size = int(rng.integers(200, 16 * 1024))
        kind = i % 6
        if kind < 2:
            idx = rng.integers(0, len(words), size // 5 + 1)
            data = b" ".join(words[j] for j in idx)[:size]
        elif kind < 4:
            data = rng.bytes(size)
        else:
            data = bytes(size)
        with open(f"{d}/f{i:06d}.dat", "wb") as f:
            f.write(data)


def mutate_any(root: str, seed: int = 4) -> int:
    """Mixed changes to any tree: append to 5 % of the files, rewrite 1 % in place
    (same size, mtime set back: only the ctime tells), delete 1 %, add 1 % new
    small files. Returns the bytes written."""
    rng = np.random.default_rng(seed)
    files = sorted(os.path.join(d, n) for d, _s, names in os.walk(root) for n in names
                   if os.path.isfile(os.path.join(d, n))
                   and not os.path.islink(os.path.join(d, n)))
    if not files:
        return 0
    order = rng.permutation(len(files))
    n = len(files)
    written = 0
    appended = [files[i] for i in order[:max(1, n // 20)]]
    rewritten = [files[i] for i in order[n // 20:n // 20 + max(1, n // 100)]]
    deleted = [files[i] for i in order[n // 20 + n // 100:n // 20 + 2 * (n // 100)]]
    for path in appended:
        extra = rng.bytes(int(rng.integers(100, 64 * 1024)))
        with open(path, "ab") as f:
            f.write(extra)
        written += len(extra)
    for path in rewritten:
        st = os.stat(path)
        if st.st_size == 0:
            continue
        span = min(st.st_size, 4096)
        with open(path, "r+b") as f:
            f.write(rng.bytes(span))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        written += span
    for path in deleted:
        os.unlink(path)
    os.makedirs(f"{root}/added", exist_ok=True)
    for i in range(max(1, n // 100)):
        data = rng.bytes(int(rng.integers(200, 16 * 1024)))
        with open(f"{root}/added/new_{i:05d}.bin", "wb") as f:
            f.write(data)
        written += len(data)
    return written


def small_changes(root: str, seed: int = 5) -> int:
    """v2 of the small files: append to 10 %, delete 1 %, add 1 %."""
    if not os.path.isdir(f"{root}/small"):
        return 0
    rng = np.random.default_rng(seed)
    files = sorted(os.path.join(d, n) for d, _s, names in os.walk(f"{root}/small")
                   for n in names)
    written = 0
    for path in files[::10]:
        extra = rng.bytes(int(rng.integers(50, 2048)))
        with open(path, "ab") as f:
            f.write(extra)
        written += len(extra)
    for path in files[5::100]:
        os.unlink(path)
    for i, path in enumerate(files[7::100]):
        data = rng.bytes(int(rng.integers(200, 16 * 1024)))
        with open(f"{path}.new{i}", "wb") as f:
            f.write(data)
        written += len(data)
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
PEAKS: list = []  # the last PeakRSS's peak of each process, largest first (printed)


class PeakRSS:
    """Sample VmHWM of processes and of every process they start (lens's reader
    processes, say) every 20 ms until they exit. VmHWM restarts at exec, unlike
    ru_maxrss after a fork from this large process. The peak is an upper bound:
    the most, over the samples, of the sum of the processes seen alive together,
    each counted at its own lifetime peak (as if all peaked at once). A process
    that has exited before another starts (a restore's manifest reader before its
    writers) is not added to it. A child is counted from its exec on (before, it
    may show its parent's pages)."""

    def __init__(self, *pids):
        import threading

        self.pids, self.peak, self.stop = pids, {p: 0 for p in pids}, threading.Event()
        self.together: set = set()  # the sets of processes seen alive in one sample
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        import psutil

        while not self.stop.is_set():
            seen = list(self.pids)
            for pid in self.pids:
                try:
                    top = psutil.Process(pid)
                    # a child still between fork and exec may show its parent's
                    # memory as its own: a precaution (a one-off 92 MB restore pass
                    # was suspected of it; 300 spawns sampled never showed it)
                    seen += [c.pid for c in top.children(recursive=True)
                             if not _before_exec(c)]
                except psutil.Error:
                    pass
            alive = []
            for pid in seen:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                kb = int(line.split()[1])
                                self.peak[pid] = max(self.peak.get(pid, 0), kb * 1024)
                                alive.append(pid)
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    pass
            self.together.add(frozenset(alive))
            self.stop.wait(0.02)

    def done(self) -> int:
        self.stop.set()
        self.thread.join()
        top = max(self.together, key=lambda pids: sum(self.peak[p] for p in pids),
                  default=frozenset(self.peak))
        PEAKS[:] = sorted((self.peak[p] for p in top if self.peak[p]), reverse=True)
        return sum(self.peak[p] for p in top)


def _before_exec(proc) -> bool:
    """Whether a child process has not called exec yet (its parent's command line)."""
    import psutil

    try:
        return proc.cmdline() == proc.parent().cmdline()
    except (psutil.Error, AttributeError):
        return True  # gone, or its parent is: nothing to count


def run(argv, env=None, cwd=None, stdin=None, stdout=None, ok=(0,)) -> tuple[float, int]:
    """Run one process; return (seconds, peak RSS in bytes). ``ok``: exit codes
    that count as success."""
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
    if proc.returncode not in ok:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return took, peak


def pipeline(first, second, env=None) -> tuple[float, int]:
    """``first | second``; peak RSS is the sum of the two."""
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
        # archives named by version, as users name them by date or run
        env = {"PYTHONPATH": ROOT, "USER": "bench", "LOGNAME": "bench"}
        return run(self._cli("create", src, "--name", f"dataset-{tag}"), env=env, cwd=ROOT)

    def restore(self, dest, over=False):
        env = {"PYTHONPATH": ROOT, "USER": "bench", "LOGNAME": "bench"}
        extra = ["--overwrite"] if over else []
        return run(self._cli("restore", "dataset-v2", "--to", dest, *extra), env=env, cwd=ROOT)


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

    def restore(self, dest, over=False):
        # restic 0.14 writes every file over a copy but reports each symlink already
        # there as an error (exit 1): that is counted as done
        return run(["restic", "restore", "latest", "--target", dest], env=self.env,
                   ok=(0, 1) if over else (0,))


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

    def restore(self, dest, over=False):
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

    def restore(self, dest, over=False):
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
        eng.create([src], owner="bench", principal=who, name="dataset-v1",
                   storage_class="GLACIER")
        upload = time.perf_counter() - t
        target = f"{os.path.basename(src)}/nc/station_target.f32"
        plan = eng.plan("dataset-v1", [target], owner="bench", principal=who)
        dest = os.path.join(work, "glacier-out")
        t = time.perf_counter()
        res = eng.restore("dataset-v1", [target], target=dest, owner="bench", principal=who,
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


def ensure_tools() -> list[str]:
    """restic, borg and zstd from Debian when missing (as root); the missing ones."""
    need = {"restic": "restic", "borg": "borgbackup", "zstd": "zstd"}
    missing = [pkg for exe, pkg in need.items() if not shutil.which(exe)]
    if missing and os.geteuid() == 0:
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "apt-ensure.sh"), *missing],
                       check=False)
    return [exe for exe in need if not shutil.which(exe)]


METRICS = (  # key, label, unit, higher is better
    ("first_mb_s", "v1 archive", "MB/s", True),
    ("second_mb_s", "v2 archive (new name)", "MB/s", True),
    ("restore_mb_s", "restore, empty folder", "MB/s", True),
    ("over_mb_s", "restore over a copy", "MB/s", True),
    ("repo_mb", "repository after v2", "MB", False),
    ("peak_rss_mb", "peak RSS", "MB", False),
)


def report(res: dict) -> list[str]:
    """One row per metric: every tool's figure and lens's ratio to each peer
    (speed: lens/peer, >1 is faster; size and RSS: lens/peer, <1 is smaller)."""
    names = list(res)
    peers = [n for n in names if n != "lens"]
    widths = [27] + [11] * len(names) + [12] * len(peers)
    head = ["metric"] + names + [f"lens/{p}" for p in peers]
    lines = [fmt_row(head, widths)]
    for key, label, unit, _higher in METRICS:
        row = [f"{label}, {unit}"] + [f"{res[n][key]:,.1f}" for n in names]
        if "lens" in res:
            row += [f"{res['lens'][key] / res[p][key]:.2f}x" if res[p][key] else "-"
                    for p in peers]
        else:
            row += ["-"] * len(peers)
        lines.append(fmt_row(row, widths))
    return lines


def settle() -> None:
    """Before a timed restore: write back what the previous step left (a deleted
    copy of 100,000 files slowed the next tool's file creation 2x on this disk) and,
    as root, drop the page cache, so every tool restores from a cold repository
    onto a quiet disk, whichever ran before it."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass  # not root: the sync alone


def room(restored: list, size: int, work: str) -> None:
    """Make room for one more restore of ``size`` bytes, removing earlier restores
    only when the disk is short of it.

    Restores are kept until every one is timed because file creation right after a
    large deletion is slow on some file systems, whichever tool creates the files:
    ext4 without a journal (this machine's) skips inodes freed in the last 1-6
    minutes, scanning them one by one for every new inode, and a restore of 30,000
    small files that followed the deletion of another took 1.5-4 s of kernel time
    instead of 0.6 s. Removing the previous tool's copy before each restore made the
    figures depend on the order the tools ran in."""
    while restored and shutil.disk_usage(work).free < 2 * size + 2e9:
        print("(short of disk: removing an earlier restore; the next restore may be "
              "slowed by the deletion)", flush=True)
        shutil.rmtree(restored.pop(0), ignore_errors=True)


def timed_round(tools, r, fn):
    """Run ``fn(tool)`` for every tool, the order rotating each round."""
    k = r % len(tools)
    for t in tools[k:] + tools[:k]:
        fn(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="archive a copy of this folder instead of generated data")
    ap.add_argument("--size-gb", type=float, default=2.0,
                    help="generated bulk data (default 2)")
    ap.add_argument("--small-files", type=int, default=100_000,
                    help="generated files under 16 KiB (default 100,000)")
    ap.add_argument("--keep", help="work directory to use and keep")
    ap.add_argument("--tools", default="lens,restic,borg,tar", help="comma list")
    ap.add_argument("--no-glacier", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="best of N for the first archive and the restores")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    missing = ensure_tools()
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install restic borgbackup zstd "
              "(or run as root)", file=sys.stderr)
        return 1
    work = args.keep or tempfile.mkdtemp(prefix="lens-bench-")
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "dataset")
    try:
        if not os.path.isdir(src):
            t = time.perf_counter()
            if args.data:
                shutil.copytree(args.data, src, symlinks=True)
            else:
                generate(src, int(args.size_gb * 1e9))
                small_files(src, args.small_files)
            print(f"{'copied' if args.data else 'generated'} {du(src) / MB:,.0f} MB in "
                  f"{time.perf_counter() - t:.0f}s", flush=True)
        size1 = du(src)
        nfiles = sum(len(n) for _d, _s, n in os.walk(src))
        chosen = {"lens": Lens, "restic": Restic, "borg": Borg, "tar": TarZstd}
        tools = [chosen[n](work) for n in args.tools.split(",")]
        res = {t.name: {"rss": 0} for t in tools}
        glacier = None
        if not args.no_glacier and not args.data and "lens" in res:
            glacier = glacier_partial(src, work)

        def best(t, key, seconds, rss) -> str:
            """Keep the best time and the largest RSS; this run's figures, as text."""
            r = res[t.name]
            r[key] = min(seconds, r.get(key, seconds))
            r["rss"] = max(r["rss"], rss)
            r[f"{key[:-2]}_rss_mb"] = max(r.get(f"{key[:-2]}_rss_mb", 0), rss / MB)
            size = size1 if key == "first_s" else size2
            each = f" ({'+'.join(f'{p / MB:.0f}' for p in PEAKS)})" if len(PEAKS) > 1 else ""
            return f"{size / MB / seconds:,.1f} MB/s, {rss / MB:,.0f} MB RSS{each}"

        # --repeat N: the first archive and the restores run N times in rotating tool
        # order (fresh repositories / folders each time); the best time counts
        for r in range(args.repeat):
            def first(t):
                shutil.rmtree(t.repo, ignore_errors=True)
                t.init()
                os.sync()  # the copy's (or the last tool's) writes go out first
                print(f"{t.name}: v1 {best(t, 'first_s', *t.backup(src, 'v1'))}", flush=True)
            timed_round(tools, r, first)
        changed = mutate(src) + small_changes(src) if not args.data else mutate_any(src)
        size2 = du(src)
        print(f"changed {changed / MB:,.0f} MB of {size2 / MB:,.0f} MB", flush=True)
        for t in tools:
            os.sync()  # the changes' (or the last tool's) writes go out first
            figures = best(t, "second_s", *t.backup(src, "v2"))
            res[t.name]["repo"] = du(t.repo)
            print(f"{t.name}: v2 {figures}", flush=True)
        restored: list[str] = []  # removed only after the last timed restore: see room()
        for r in range(args.repeat):
            def restore(t, r=r):
                dest = os.path.join(work, f"restore-{t.name.replace('|', '-')}-{r}")
                room(restored, size2, work)
                settle()
                empty = best(t, "restore_s", *t.restore(dest))
                settle()
                over = best(t, "over_s", *t.restore(dest, over=True))
                restored.append(dest)
                print(f"{t.name}: restore {empty}; over a copy {over}", flush=True)
            timed_round(tools, r, restore)
        for dest in restored:
            shutil.rmtree(dest, ignore_errors=True)
        for r in res.values():
            r.update(first_mb_s=size1 / MB / r["first_s"], second_mb_s=size2 / MB / r["second_s"],
                     restore_mb_s=size2 / MB / r["restore_s"], over_mb_s=size2 / MB / r["over_s"],
                     repo_mb=r["repo"] / MB, peak_rss_mb=r["rss"] / MB)
        print()
        load = os.getloadavg()
        print(f"dataset: {args.data or 'generated'}; v1 {size1 / MB:,.0f} MB in {nfiles:,} "
              f"files, v2 {size2 / MB:,.0f} MB ({changed / MB:,.0f} MB changed); "
              f"{os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; "
              f"best of {args.repeat} for v1 and the restores; default settings")
        for line in report(res):
            print(line)
        print("peak RSS by step, MB: " + "; ".join(
            f"{name} " + "/".join(f"{r[k]:.0f}" for k in ("first_rss_mb", "second_rss_mb",
                                                         "restore_rss_mb", "over_rss_mb"))
            for name, r in res.items()) + " (v1/v2/restore/over a copy)")
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
                json.dump({"data": args.data, "size1": size1, "size2": size2, "files": nfiles,
                           "changed": changed, "tools": res, "glacier": glacier}, f, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
