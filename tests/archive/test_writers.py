"""Writer processes: a restore's new small files written by helper processes
(``restore_processes``), with the same result as the threads' path, the same
refusals, and nothing left running."""

from __future__ import annotations

import os
import random
import threading

import psutil
import pytest

from jupyter_ext.archive import restore as restore_mod
from jupyter_ext.archive import writer_process
from jupyter_ext.archive.errors import Cancelled, IntegrityError, UnsafePath
from jupyter_ext.archive.repository import Repository
from jupyter_ext.archive.safefs import current_umask, safe_mode

from .helpers import ALICE, engine, helper_processes, snapshot, still_running


def _writers() -> list:
    return helper_processes("writer_process")


def _tree(root, n=1500, seed=5) -> str:
    """Small files in 15 folders, with assorted modes and mtimes; some empty, some
    of several chunks, some repeated."""
    rng = random.Random(seed)
    for i in range(n):
        d = os.path.join(root, f"d{i % 15:02}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"f{i:05}.dat")
        size = rng.choice((0, 10, 3000, 40_000, 70_000))
        data = b"same\n" * 20 if i % 50 == 0 else rng.randbytes(size // 2) + bytes(size // 2)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, rng.choice((0o600, 0o644, 0o755, 0o4755)))
        os.utime(path, ns=(0, 1_600_000_000_123_456_789 + i))
    return root


def _big(root, n=3, seed=7) -> str:
    """Files over SMALL_FILE, of chunks in several packs: written one at a time by
    the restoring process, beside the writer processes."""
    rng = random.Random(seed)
    d = os.path.join(root, "big")
    os.makedirs(d, exist_ok=True)
    for i in range(n):
        path = os.path.join(d, f"b{i}.bin")
        with open(path, "wb") as f:
            f.write(rng.randbytes(1_200_000) + bytes(900_000 + i))
        os.utime(path, ns=(0, 1_600_000_000_987_654_321 + i))
    return root


def test_writer_processes_restore_what_threads_restore(tmp_path, monkeypatch):
    """The same tree, byte for byte (modes masked, mtimes to the nanosecond),
    from writer processes (the big files written meanwhile on a thread of the
    restore) and from threads; the processes are gone afterwards."""
    src = _big(_tree(str(tmp_path / "src")))
    repo = str(tmp_path / "repo")
    engine(repo).create([src], owner="alice", principal=ALICE, name="a")
    started, big_on = [], []

    nice = []

    class Seen(restore_mod.WriterPool):  # the real pool; its processes are noted
        def __init__(self, *args):
            super().__init__(*args)
            started.extend(psutil.Process(p.pid) for p in self.procs)

        def next_answer(self):
            proc = self.queue[0][0]  # the writer whose answer comes next
            answer = super().next_answer()
            nice.append(psutil.Process(proc.pid).nice())  # it has run: its priority is set
            return answer

    big_files = restore_mod.Restorer._big_files

    def noted(self, files, *args):
        big_on.append(threading.current_thread().name)
        return big_files(self, files, *args)

    monkeypatch.setattr(restore_mod, "WriterPool", Seen)
    monkeypatch.setattr(restore_mod.Restorer, "_big_files", noted)
    out = tmp_path / "by-processes"
    engine(repo).restore("a", target=str(out), owner="alice", principal=ALICE)
    assert len(started) == 2
    assert [n.startswith("lens-big") for n in big_on] == [True]  # beside the writers
    # writers yield the CPU to the big files
    assert nice and set(nice) == {min(19, os.nice(0) + writer_process.NICE)}
    assert not [p for p in started if still_running(p)]
    monkeypatch.undo()
    threads = tmp_path / "by-threads"
    engine(repo, restore_processes=0).restore("a", target=str(threads), owner="alice",
                                              principal=ALICE)
    umask = current_umask()
    expected = {rel: (kind, safe_mode(mode, umask), *rest) if kind == "file" else
                (kind, mode, *rest) for rel, (kind, mode, *rest) in snapshot(src).items()}
    assert snapshot(str(out / "src")) == expected == snapshot(str(threads / "src"))


def test_a_name_taken_after_the_preflight_is_handed_back_and_replaced(tmp_path):
    """A writer creates only new names (O_EXCL): a file that appears after the
    preflight is handed back, and the restore writes it under a temp name and
    renames it over, as it does a resumed restore's partial file."""
    src = _tree(str(tmp_path / "src"), n=300)
    repo = str(tmp_path / "repo")
    eng = engine(repo)
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    taken = out / "src" / "d03" / "f00003.dat"

    def squat(p):
        if p.phase == "restore" and not taken.exists():
            taken.parent.mkdir(parents=True, exist_ok=True)
            taken.write_bytes(b"partial")

    eng.restore("a", target=str(out), owner="alice", principal=ALICE, progress=squat)
    assert taken.read_bytes() == open(os.path.join(src, "d03", "f00003.dat"), "rb").read()
    assert snapshot(str(out / "src")).keys() == snapshot(src).keys()
    assert not [n for _d, _s, names in os.walk(out) for n in names if "lens-tmp" in n]


def _corrupt_first_chunk(eng, f) -> None:
    r = Repository.open(eng.store, "alice", ALICE)
    loc = r.locate(bytes.fromhex(f.chunks[0]))
    with open(os.path.join(eng.store.root, r.pack_key(loc.pack)), "r+b") as fh:
        fh.seek(loc.offset + loc.length - 1)
        last = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([last[0] ^ 0xFF]))


@pytest.mark.parametrize("victim_kind", ["small", "big"])
def test_a_corrupt_chunk_fails_naming_the_file_and_stops_the_writers(tmp_path, victim_kind):
    """A corrupt chunk of a small file (a writer's) or of a big file (the restore's
    own thread, meanwhile) fails the restore naming that file; the other half
    stops, and no writer is left."""
    src = _big(_tree(str(tmp_path / "src"), n=1200))
    repo = str(tmp_path / "repo")
    eng = engine(repo)
    eng.create([src], owner="alice", principal=ALICE, name="a")
    r = Repository.open(eng.store, "alice", ALICE)
    files = r.manifest(r.resolve("a")).files
    if victim_kind == "small":
        victim = next(f for f in files if f.path.startswith("src/d11/") and f.size >= 3000)
    else:
        victim = next(f for f in files if f.path == "src/big/b1.bin")
    _corrupt_first_chunk(eng, victim)
    with pytest.raises(IntegrityError, match=f"{victim.path}: data in pack .* is corrupt"):
        eng.restore("a", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert not _writers()
    state = eng.restores(owner="alice", principal=ALICE)[0]
    assert state["status"] == "failed" and victim.path in state["error"]


def test_a_cancelled_restore_stops_both_halves_and_resumes(tmp_path, monkeypatch):
    """Cancelled while writers and the big files run: Cancelled (not the other
    half's stop), no writer left; the restore resumes to the same tree."""
    src = _big(_tree(str(tmp_path / "src"), n=1200))
    repo = str(tmp_path / "repo")
    eng = engine(repo)
    eng.create([src], owner="alice", principal=ALICE, name="a")
    cancel = threading.Event()
    writers_answer = restore_mod.Restorer._writers_answer

    def cancel_after_first_answer(self, *args):  # the user's cancel, once writers run
        writers_answer(self, *args)
        cancel.set()

    monkeypatch.setattr(restore_mod.Restorer, "_writers_answer", cancel_after_first_answer)
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        eng.restore("a", target=str(out), owner="alice", principal=ALICE, cancel=cancel)
    assert not _writers()
    monkeypatch.undo()
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    umask = current_umask()
    assert snapshot(str(out / "src")) == {
        rel: (kind, safe_mode(mode, umask), *rest) if kind == "file" else (kind, mode, *rest)
        for rel, (kind, mode, *rest) in snapshot(src).items()}


def test_a_folder_swapped_for_a_link_is_not_written_through(tmp_path, monkeypatch):
    """A writer opens each folder without following links: a folder replaced by a
    symlink after the restore made it (here: just before the writers start) is
    refused, and nothing lands outside the target."""
    src = _tree(str(tmp_path / "src"), n=300)
    repo = str(tmp_path / "repo")
    eng = engine(repo)
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    small_by_processes = restore_mod.Restorer._small_by_processes

    def swapped_first(self, walkers):
        folder = out / "src" / "d07"
        os.rename(folder, tmp_path / "moved")
        os.symlink(outside, folder)
        return small_by_processes(self, walkers)

    monkeypatch.setattr(restore_mod.Restorer, "_small_by_processes", swapped_first)
    with pytest.raises(UnsafePath, match="d07"):
        eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert not os.listdir(outside)
    assert not _writers()


def test_a_negative_process_count_is_refused(tmp_path):
    from jupyter_ext.archive.errors import ConfigError

    repo = str(tmp_path / "repo")
    src = _tree(str(tmp_path / "src"), n=3)
    engine(repo).create([src], owner="alice", principal=ALICE, name="a")
    with pytest.raises(ConfigError, match="restore_processes"):
        engine(repo, restore_processes=-1).restore("a", target=str(tmp_path / "out"),
                                                   owner="alice", principal=ALICE)


@pytest.mark.parametrize("processes", [2, 0], ids=["processes", "threads"])
def test_over_a_copy_writers_keep_unchanged_files_and_hand_back_the_rest(tmp_path,
                                                                          monkeypatch,
                                                                          processes):
    """Over a copy (``overwrite``) the writer processes check the files that were
    there: unchanged ones are kept in place (same inode; mode and mtime set), and a
    changed file, a hard link to a file outside and a symlink in a file's place go
    back to the restore, which replaces them; nothing outside changes. The result
    is the threads' one."""
    src = _tree(str(tmp_path / "src"), n=600)
    repo = str(tmp_path / "repo")
    eng = engine(repo, restore_processes=processes)
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    copy = out / "src"
    names = sorted(p for p in copy.rglob("f*.dat") if p.stat().st_size >= 3000)
    kept, mode_changed, same_size, linked, as_link = names[:5]
    inode = kept.stat().st_ino
    os.chmod(mode_changed, 0o600)
    os.utime(mode_changed, ns=(0, 5))
    mode_inode = mode_changed.stat().st_ino
    data = bytearray(same_size.read_bytes())
    data[0] ^= 1
    same_size.write_bytes(bytes(data))
    outside = tmp_path / "outside.dat"
    outside.write_bytes(linked.read_bytes())
    os.chmod(outside, 0o600)
    linked.unlink()
    os.link(outside, linked)
    target = tmp_path / "target.dat"
    target.write_bytes(b"outside the target")
    as_link.unlink()
    as_link.symlink_to(target)
    checked = []
    unchanged = restore_mod.Restorer._unchanged

    def counted(self, f, *args):  # the restore's own check of a file with content
        if f.size:
            checked.append(f.path)
        return unchanged(self, f, *args)

    monkeypatch.setattr(restore_mod.Restorer, "_unchanged", counted)
    res = eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)
    assert res["state"]["status"] == "done"
    small = [p for p in copy.rglob("*") if p.is_file() and 0 < p.stat().st_size < 2**20]
    if processes:  # the writers checked all but what they handed back (and the few
        # files whose chunks span packs, which the restore writes itself)
        assert {str(p.relative_to(out)) for p in (same_size, linked, as_link)} <= set(checked)
        assert len(checked) < len(small) / 10
    else:
        assert len(checked) >= len(small)
    umask = current_umask()
    expected = {rel: (kind, safe_mode(mode, umask), *rest) if kind == "file" else
                (kind, mode, *rest) for rel, (kind, mode, *rest) in snapshot(src).items()}
    assert snapshot(str(copy)) == expected
    assert kept.stat().st_ino == inode and mode_changed.stat().st_ino == mode_inode
    assert outside.stat().st_mode & 0o777 == 0o600 and outside.stat().st_nlink == 1
    assert target.read_bytes() == b"outside the target" and not as_link.is_symlink()
    assert not _writers()
