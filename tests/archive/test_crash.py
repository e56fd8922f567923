"""kill -9 the archiver at random points (>= 20 real kills): the repository stays
consistent every time, a re-run completes without storing any chunk twice, and the
restored tree is byte-identical to the source."""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from jupyter_ext.archive.repository import PackIndex

from .helpers import ALICE, engine, is_helper, make_tree, snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILD = [sys.executable, "-m", "tests.archive.crash_child"]


def _spawn(repo, src, mode="create"):
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(CHILD + [repo, src, mode], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _churn(src, rng, i):
    """New data for every run, so each run has work to be interrupted in."""
    with open(os.path.join(src, f"fresh-{i % 3}.bin"), "wb") as f:
        f.write(rng.randbytes(600_000))
    with open(os.path.join(src, "table.csv"), "a") as f:
        f.write("".join(f"{i},{rng.random():.9f}\n" for _ in range(3000)))


def test_sigkill_at_random_points(tmp_path):
    rng = random.Random(int(os.environ.get("LENS_CRASH_SEED", "7")))
    src = make_tree(str(tmp_path / "src"), scale=3)
    repo = str(tmp_path / "repo")
    # how long does an undisturbed run take (after start-up)?
    _churn(src, rng, 0)
    t0 = time.monotonic()
    probe = _spawn(str(tmp_path / "probe"), src)
    t_ready = time.monotonic()
    assert probe.wait(60) == 0, probe.stderr.read()
    work = max(0.05, time.monotonic() - t_ready)
    assert time.monotonic() - t0 < 30
    eng = engine(repo)
    kills = 0
    for i in range(80):
        if kills >= 22:
            break
        _churn(src, rng, i)
        proc = _spawn(repo, src)
        started = time.monotonic()
        time.sleep(rng.uniform(0, work))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        else:  # finished first: the machine got faster, aim earlier
            work = max(0.02, min(work, time.monotonic() - started) * 0.8)
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
        report = eng.check(owner="alice", principal=ALICE)
        assert report.ok, (i, report.errors)
        eng = engine(repo)  # fresh engine: nothing cached between runs
    assert kills >= 20, f"only {kills} runs were still going when killed"
    # the re-run completes
    final = _spawn(repo, src)
    assert final.wait(60) == 0, final.stderr.read()
    eng = engine(repo)
    report = eng.check(owner="alice", principal=ALICE, read_data=True)
    assert report.ok, report.errors
    # packs indexed before a crash were reused, never uploaded again
    seen = collections.Counter()
    for obj in eng.store.list("users/alice/index/"):
        for cid, *_ in PackIndex.from_bytes(eng.store.get(obj.key)).chunks:
            seen[cid] += 1
    assert seen and max(seen.values()) == 1
    out = tmp_path / "out"
    eng.restore("crashy", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "data")) == snapshot(src)


def _kill_once_helpers_run(proc, module: str) -> None:
    """kill -9 ``proc`` once its helper processes (``module``) run; they must go too."""
    parent = psutil.Process(proc.pid)
    helpers = []
    deadline = time.monotonic() + 30
    while not helpers and proc.poll() is None and time.monotonic() < deadline:
        try:
            helpers = [p for p in parent.children() if is_helper(p, module)]
        except psutil.NoSuchProcess:  # it ended meanwhile: the assert below says so
            break
        time.sleep(0.005)
    assert helpers, f"no {module} was seen"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()
    _gone, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, f"{module} processes left behind: {alive}"


def test_sigkill_leaves_no_reader_process(tmp_path):
    """Reader processes exit with the archiver that started them, even on kill -9
    (their stdin closes), and the re-run completes."""
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(3)
    for i in range(4000):
        (src / f"f{i:05}").write_bytes(rng.randbytes(rng.randint(100, 3000)))
    repo = str(tmp_path / "repo")
    _kill_once_helpers_run(_spawn(repo, str(src), "create-readers"), "reader_process")
    assert engine(repo).check(owner="alice", principal=ALICE).ok
    final = _spawn(repo, str(src), "create-readers")
    assert final.wait(60) == 0, final.stderr.read()
    final.stdout.close()
    final.stderr.close()
    eng = engine(repo)
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
    out = tmp_path / "out"
    eng.restore("crashy", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "src")) == snapshot(str(src))


def _restore_done(repo: str, out: str) -> bool:
    states = engine(repo).restores(owner="alice", principal=ALICE)
    return any(st["target"] == out and st["status"] == "done" for st in states)


def test_sigkill_leaves_no_writer_process(tmp_path):
    """A restore's writer processes exit with it, even on kill -9 (their stdin
    closes), and the restore resumes to completion."""
    src = tmp_path / "src"
    rng = random.Random(4)
    for i in range(4000):
        (src / f"d{i % 20:02}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 20:02}" / f"f{i:05}").write_bytes(rng.randbytes(rng.randint(0, 3000)))
    repo = str(tmp_path / "repo")
    made = _spawn(repo, str(src))
    assert made.wait(60) == 0, made.stderr.read()
    made.stdout.close()
    made.stderr.close()
    out = str(tmp_path / "out")
    _kill_once_helpers_run(_spawn(repo, out, "restore-writers"), "writer_process")
    final = _spawn(repo, out, "restore-writers")  # resumes: no --overwrite needed
    assert final.wait(60) == 0, final.stderr.read()
    final.stdout.close()
    final.stderr.close()
    assert snapshot(os.path.join(out, "src")) == snapshot(str(src))
    assert not [n for _d, _s, names in os.walk(out) for n in names if "lens-tmp" in n]


@pytest.mark.parametrize("mode", ["restore", "restore-writers"])
def test_sigkill_during_restore_resumes(tmp_path, mode):
    rng = random.Random(int(os.environ.get("LENS_CRASH_SEED", "11")))
    src = make_tree(str(tmp_path / "src"), scale=2)
    many = os.path.join(src, "many")
    os.makedirs(many)
    for i in range(400):
        with open(os.path.join(many, f"f{i:03d}.txt"), "wb") as f:
            f.write(rng.randbytes(rng.randint(0, 6000)))
    repo = str(tmp_path / "repo")
    probe = _spawn(repo, src)
    assert probe.wait(60) == 0, probe.stderr.read()
    out = str(tmp_path / "out")
    t = time.monotonic()
    first = _spawn(repo, str(tmp_path / "probe-out"), mode)
    assert first.wait(60) == 0, first.stderr.read()
    work = max(0.05, time.monotonic() - t)
    kills = resumed_to_completion = 0
    for _ in range(60):
        if kills >= 8:
            break
        proc = _spawn(repo, out, mode)
        started = time.monotonic()
        time.sleep(rng.uniform(0, work * 0.4))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        else:
            work = max(0.02, min(work, time.monotonic() - started) * 0.8)
        proc.wait(30)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode == 0 or _restore_done(repo, out):
            # finished (possibly killed just after): the tree is complete; start over
            assert snapshot(os.path.join(out, "data")) == snapshot(src)
            resumed_to_completion += 1
            shutil.rmtree(out)
            store = engine(repo).store
            for obj in list(store.list("users/alice/restores/")):
                store.delete(obj.key)  # forget it: the next run is a new restore
            continue
        assert proc.returncode == -signal.SIGKILL, err  # never "exists" on resume
    print(f"restore kills: {kills}, completed restores: {resumed_to_completion}")
    assert kills >= 5
    if not _restore_done(repo, out):
        final = _spawn(repo, out, mode)  # resumes: no --overwrite needed
        assert final.wait(60) == 0, final.stderr.read()
    assert snapshot(os.path.join(out, "data")) == snapshot(src)
    assert not [n for _d, _s, names in os.walk(out) for n in names if "lens-tmp" in n]
