"""Archive memory at scale: peak RSS of lens and restic at 2 GB and at 8 GB of data.

    python benchmarks/archive_memory.py                      # 2 and 8 GB, lens and restic
    python benchmarks/archive_memory.py --sizes 2 --work /big/dir --keep
    python benchmarks/archive_memory.py --parts /data/a,/data/b,/data/c   # your own data

The data is built from parts of about 2 GB each (1.8 GB of mixed research data from
``benchmarks/archive.py``'s generator: float32 fields, Zarr, CSV, already compressed
files; plus 25,000 files of 200 B - 16 KiB), every part from its own seeds, so
nothing dedups across parts. A size of N GB archives the first N/2 parts: the
file count grows with the bytes, as it does in real trees. Every tool archives the
parts into a fresh repository, then restores them into an empty folder, cold (a
sync and a dropped page cache first, as in ``archive.py``); peak RSS is the sum of
the VmHWM of its processes (lens's reader and writer processes included). Both
tools run in the same run, one after the other, with their default settings
(``--repeat N``: N rounds, the order of the tools rotating each round, the best
speed and the highest RSS of each). Reported: MB/s and peak RSS per step,
lens/restic, and each tool's RSS at the largest size over its RSS at the smallest.

``--parts DIR,DIR,...`` measures existing folders instead of generated data: the
first folder alone, then all of them together. Before each tool archives, every
file is read once, so all tools read from the page cache alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import archive as bench  # noqa: E402  (the generator, runner and RSS sampler)

MB = 1e6
PART_BULK = int(1.8e9)
PART_SMALL = 25_000


def make_parts(work: str, count: int) -> list[str]:
    """Parts 1..count under ``work`` (generated once; a ``.done`` marker per part)."""
    parts = []
    for k in range(1, count + 1):
        path = os.path.join(work, f"part{k}")
        if not os.path.exists(path + ".done"):
            shutil.rmtree(path, ignore_errors=True)
            t = time.perf_counter()
            bench.generate(path, PART_BULK, seed=10 + k)
            bench.small_files(path, PART_SMALL, seed=20 + k)
            open(path + ".done", "w").close()
            print(f"generated part{k}: {bench.du(path) / MB:,.0f} MB in "
                  f"{time.perf_counter() - t:.0f}s", flush=True)
        parts.append(path)
    return parts


def lens_steps(work: str, sources: list[str]):
    repo = os.path.join(work, "repo-lens")
    env = {"PYTHONPATH": bench.ROOT, "USER": "bench", "LOGNAME": "bench"}

    def cli(*args):
        return [bench.PY, "-m", "jupyter_ext.cli.main", "archive", *args, "--repo", repo,
                "--owner", "user:bench", "--no-progress"]

    def create():
        return bench.run(cli("create", *sources, "--name", "scale"), env=env, cwd=bench.ROOT)

    def restore(dest):
        return bench.run(cli("restore", "scale", "--to", dest), env=env, cwd=bench.ROOT)

    return repo, create, restore


def restic_steps(work: str, sources: list[str]):
    repo = os.path.join(work, "repo-restic")
    env = {"RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": repo,
           "RESTIC_CACHE_DIR": os.path.join(work, "restic-cache")}

    def create():
        bench.run(["restic", "init", "--repository-version", "2"], env=env)
        return bench.run(["restic", "backup", "--compression", "auto", *sources], env=env)

    def restore(dest):
        return bench.run(["restic", "restore", "latest", "--target", dest], env=env)

    return repo, create, restore


TOOLS = {"lens": lens_steps, "restic": restic_steps}


def warm(sources: list[str]) -> None:
    """Read every regular file once, so each tool archives from the page cache
    alike (existing folders may be cold; the first tool would pay for it)."""
    for src in sources:
        for dirpath, _dirs, files in os.walk(src):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    if not os.path.isfile(path) or os.path.islink(path):
                        continue
                    with open(path, "rb", buffering=0) as f:
                        while f.read(1 << 20):
                            pass
                except OSError:
                    pass


def measure(work: str, tool: str, sources: list[str], size: int, restored: list) -> dict:
    """One tool's create and restore of ``sources``; the restored folder is added to
    ``restored``, removed only after the last restore (``archive.room``: file
    creation right after a large delete is slow on this disk, for any tool)."""
    repo, create, restore = TOOLS[tool](work, sources)
    dest = os.path.join(work, f"restore-{tool}-{len(restored)}")
    for p in (repo, dest, os.path.join(work, "restic-cache")):
        shutil.rmtree(p, ignore_errors=True)
    warm(sources)
    os.sync()  # as archive.py: the deletes and writes before it go out first
    try:
        c_s, c_rss = create()
        bench.room(restored, size, work)
        bench.settle()  # as archive.py: every restore cold, onto a quiet disk
        r_s, r_rss = restore(dest)
        out = {"create_mb_s": size / MB / c_s, "create_rss_mb": c_rss / MB,
               "restore_mb_s": size / MB / r_s, "restore_rss_mb": r_rss / MB,
               "repo_mb": bench.du(repo) / MB}
    finally:
        restored.append(dest)
        for p in (repo, os.path.join(work, "restic-cache")):
            shutil.rmtree(p, ignore_errors=True)
    out["peak_rss_mb"] = max(out["create_rss_mb"], out["restore_rss_mb"])
    print(f"{tool} {size / 1e9:.1f} GB: create {out['create_mb_s']:.1f} MB/s "
          f"{out['create_rss_mb']:.0f} MB RSS; restore {out['restore_mb_s']:.1f} MB/s "
          f"{out['restore_rss_mb']:.0f} MB RSS", flush=True)
    return out


def best_of(outs: list[dict]) -> dict:
    """One tool's rounds at one size: the best speed of each step, the highest peak
    RSS (memory is a bound, not a best case), the repository as measured."""
    best = dict(outs[-1])
    for key in ("create_mb_s", "restore_mb_s"):
        best[key] = max(o[key] for o in outs)
    for key in ("create_rss_mb", "restore_rss_mb", "peak_rss_mb"):
        best[key] = max(o[key] for o in outs)
    if len(outs) > 1:
        best["rounds"] = outs
    return best


def report(res: dict) -> list[str]:
    """Per size: each tool's figures and lens/restic; then RSS growth per tool."""
    lines = []
    keys = (("create_mb_s", "create, MB/s"), ("create_rss_mb", "create peak RSS, MB"),
            ("restore_mb_s", "restore, MB/s"), ("restore_rss_mb", "restore peak RSS, MB"),
            ("repo_mb", "repository, MB"))
    for size, by_tool in res.items():
        info = by_tool.pop("_data")
        lines.append(f"{size} GB: {info['bytes'] / MB:,.0f} MB in {info['files']:,} files")
        tools = list(by_tool)
        lines.append("  " + "".join(f"{c:<24}" if i == 0 else f"{c:>13}" for i, c in enumerate(
            ["metric", *tools, *(["lens/restic"] if len(tools) > 1 else [])])))
        for key, label in keys:
            row = [label] + [f"{by_tool[t][key]:,.1f}" for t in tools]
            if "lens" in by_tool and "restic" in by_tool:
                row.append(f"{by_tool['lens'][key] / by_tool['restic'][key]:.2f}x")
            lines.append("  " + "".join(f"{c:<24}" if i == 0 else f"{c:>13}"
                                        for i, c in enumerate(row)))
        by_tool["_data"] = info
    sizes = list(res)
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for tool in [t for t in res[lo] if t != "_data" and t in res[hi]]:
            a, b = res[lo][tool], res[hi][tool]
            lines.append(f"{tool}: peak RSS {hi} GB / {lo} GB: create "
                         f"{b['create_rss_mb'] / a['create_rss_mb']:.2f}x, restore "
                         f"{b['restore_rss_mb'] / a['restore_rss_mb']:.2f}x")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2,8", help="GB, even numbers (default 2,8)")
    ap.add_argument("--tools", default="lens,restic", help="comma list of lens,restic")
    ap.add_argument("--work", help="work directory (generated parts are reused)")
    ap.add_argument("--keep", action="store_true", help="keep the generated parts")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds per size, the tools' order rotating each round: the best "
                    "speed of N (and the highest RSS) is reported")
    ap.add_argument("--parts", help="comma list of existing folders: the first alone, then all")
    args = ap.parse_args(argv)
    if "restic" in args.tools and bench.ensure_tools():
        print("missing restic: apt-get install restic", file=sys.stderr)
        return 1
    given = [os.path.abspath(p) for p in args.parts.split(",")] if args.parts else []
    if any(not os.path.isdir(p) for p in given):
        ap.error("--parts: every part must be an existing folder")
    if args.repeat < 1:
        ap.error("--repeat: at least 1")
    sizes = [int(s) for s in args.sizes.split(",")]
    if not given and any(s < 2 or s % 2 for s in sizes):
        ap.error("--sizes: even numbers of GB, at least 2")
    work = args.work or tempfile.mkdtemp(prefix="lens-membench-")
    os.makedirs(work, exist_ok=True)
    restored: list = []
    try:
        if given:
            runs = [given[:1], given] if len(given) > 1 else [given]
        else:
            parts = make_parts(work, max(sizes) // 2)
            runs = [parts[:size // 2] for size in sizes]
        res: dict = {}
        for sources in runs:
            nbytes = sum(bench.du(p) for p in sources)
            size = round(nbytes / 1e9, 1)
            files = sum(len(n) for p in sources for _d, _s, n in os.walk(p))
            res[size] = {"_data": {"bytes": nbytes, "files": files}}
            rounds: dict = {}

            def one(tool, sources=sources, nbytes=nbytes, rounds=rounds):
                rounds.setdefault(tool, []).append(
                    measure(work, tool, sources, nbytes, restored))

            for r in range(args.repeat):
                bench.timed_round(args.tools.split(","), r, one)  # the order rotates
            for tool, outs in rounds.items():
                res[size][tool] = best_of(outs)
        load = os.getloadavg()
        passes = ("one pass each" if args.repeat == 1 else
                  f"best of {args.repeat} for speed, the highest RSS of them, tools in turn")
        print(f"\n{os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; "
              f"default settings; {passes}")
        for line in report(res):
            print(line)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        for dest in restored:
            shutil.rmtree(dest, ignore_errors=True)
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
