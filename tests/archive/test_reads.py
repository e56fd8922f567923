"""How the archiver reads: small files in one read, big ones chunked, both at once.

A file under the chunker's minimum is read with one ``read`` (no chunker), in a
thread or, for archives of many of them, in reader processes (``readers=1`` here
forces those). What is read wins over what the scan saw, whether the file grew
(past the minimum: chunked after all), shrank or emptied between the scan and the
read."""

from __future__ import annotations

import os
import random
import threading

import pytest

from jupyter_ext.archive import restore as restore_mod
from jupyter_ext.archive.blobs import PACK_MAGIC, chunk_id, decode
from jupyter_ext.archive.errors import Cancelled, ConfigError
from jupyter_ext.archive.framing import frame, read_message, write_all
from jupyter_ext.archive.manifest import FileEntry
from jupyter_ext.archive.reader_process import FAILED, GREW, OK, read_files
from jupyter_ext.archive.readers import ReaderPool, batches
from jupyter_ext.archive.restore import InFlight
from jupyter_ext.archive.sources import Source

from .helpers import ALICE, engine, helper_processes, snapshot

THREAD = {"readers_from": 10**9}
PROCESSES = {"readers_from": 1, "reader_processes": 2}


def _readers() -> list:
    return helper_processes("reader_process")


def _files(eng, name):
    return {f["path"]: f for f in eng.show(name, owner="alice", principal=ALICE)["files"]}


@pytest.mark.parametrize("reads", [THREAD, PROCESSES], ids=["thread", "processes"])
def test_small_files_changed_between_scan_and_read_are_archived_as_read(tmp_path, reads):
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(7)
    (src / "grows.txt").write_bytes(b"tiny")
    (src / "grows-big.bin").write_bytes(b"seed")
    (src / "shrinks.txt").write_bytes(b"0123456789" * 100)
    (src / "empties.txt").write_bytes(b"soon gone")
    (src / "same.txt").write_bytes(b"unchanged")
    big_tail = rng.randbytes(200_000)  # past the test chunker's minimum (4 KiB)

    def change(items):
        with open(src / "grows.txt", "ab") as f:
            f.write(b" and more")
        with open(src / "grows-big.bin", "ab") as f:
            f.write(big_tail)
        with open(src / "shrinks.txt", "r+b") as f:
            f.truncate(10)
        with open(src / "empties.txt", "r+b") as f:
            f.truncate(0)

    eng = engine(str(tmp_path / "repo"), **reads)
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="a", after_scan=change)
    assert not res["skipped"]
    files = _files(eng, "a")
    assert files["src/grows.txt"]["size"] == len(b"tiny and more")
    assert files["src/grows-big.bin"]["size"] == 4 + len(big_tail)
    assert len(files["src/grows-big.bin"]["chunks"]) > 1  # chunked after all
    assert files["src/shrinks.txt"]["size"] == 10
    assert files["src/empties.txt"]["size"] == 0 and files["src/empties.txt"]["chunks"] == []
    assert files["src/same.txt"]["chunks"] == [chunk_id(b"unchanged").hex()]

    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert {p.name: p.read_bytes() for p in (out / "src").iterdir()} == {
        p.name: p.read_bytes() for p in src.iterdir()}


@pytest.mark.parametrize("reads", [THREAD, PROCESSES], ids=["thread", "processes"])
def test_many_small_and_big_files_together_round_trip(tmp_path, reads):
    """The first worker takes the small files, the other the big ones; both feed
    the same repository at once. Small files share packs in path order."""
    src = tmp_path / "mixed"
    rng = random.Random(11)
    for d in range(8):
        sub = src / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(150):
            kind = i % 3
            data = (rng.randbytes(rng.randint(1, 3000)) if kind == 0
                    else b"\0" * rng.randint(0, 3000) if kind == 1
                    else (f"{d},{i},{rng.random()}\n" * rng.randint(1, 100)).encode())
            (sub / f"f{i:03}").write_bytes(data)
    for m in range(20):  # over the chunker's minimum (4 KiB), under a big file (32 KiB)
        (src / "d3" / f"medium{m:02}").write_bytes(rng.randbytes(5_000 + m * 1_200))
    for b in range(4):
        (src / f"big{b}.bin").write_bytes(rng.randbytes(150_000 + b * 40_000))
    (src / "dup.bin").write_bytes((src / "big0.bin").read_bytes())  # deduplicated

    eng = engine(str(tmp_path / "repo"), **reads)
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="m")
    assert res["archive"]["files"] == 8 * 150 + 20 + 5 and not res["skipped"]
    assert res["progress"]["files_done"] == res["archive"]["files"]
    out = tmp_path / "out"
    eng.restore("m", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "mixed")) == snapshot(str(src))
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
    # the same data once more under another name: every file is the parent's
    again = eng.create([str(src)], owner="alice", principal=ALICE, name="m2")
    assert again["progress"]["bytes_new"] == 0
    assert not _readers()  # the reader processes are gone


def test_repeated_small_files_are_stored_once_within_and_across_batches(tmp_path):
    """Reader answers are deduplicated a batch at a time: a file repeated inside one
    batch, and across batches, is stored once."""
    src = tmp_path / "same"
    src.mkdir()
    rng = random.Random(3)
    shared = rng.randbytes(3000)
    for i in range(600):
        data = shared if i % 2 else rng.randbytes(1000 + i)
        (src / f"f{i:03}").write_bytes(data)
    eng = engine(str(tmp_path / "repo"), **PROCESSES)
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="s")
    unique = sum(1000 + i for i in range(0, 600, 2)) + 3000
    assert res["progress"]["bytes_new"] == unique
    assert res["progress"]["bytes_done"] == unique - 3000 + 300 * 3000
    out = tmp_path / "out"
    eng.restore("s", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "same")) == snapshot(str(src))


def test_a_reader_packs_the_blobs_it_is_told_to_keep(tmp_path):
    """A reader answers a batch with ids and sizes only, packs the blobs the archiver
    keeps (in order, where the archiver's index says), drops the others, and seals a
    full pack: its id is its BLAKE3, and each kept blob decodes to its file."""
    import blake3

    rng = random.Random(4)
    files = []
    for i in range(60):  # incompressible and text: about 400 KB to pack
        path = tmp_path / f"r{i:02}"
        path.write_bytes(rng.randbytes(12_000) if i % 2 else f"line {i}\n".encode() * 900)
        st = os.stat(path)
        files.append((str(path), st.st_dev, st.st_ino, st.st_size))
    made, shipped = [], []

    def new_pack():
        made.append(str(tmp_path / f"pack{len(made)}"))
        open(made[-1], "wb").close()
        return made[-1]

    pool = ReaderPool(1, 3, 100_000, new_pack, shipped.append)
    try:
        pool.submit(list(range(30)), files[:30])
        pool.submit(list(range(30, 60)), files[30:])
        for _ in range(2):
            proc, tags, answers = pool.next_answer()
            mask = bytes(i % 3 != 0 for i in tags)  # every third file is "known"
            pool.keep(proc, mask, [(cid.hex(), size, n) for keep, (_, (cid, n, _, size))
                                   in zip(mask, answers, strict=True) if keep])
        pool.seal_all()
        while pool.queue:
            assert pool.next_answer() is None  # seals only
    finally:
        pool.close()
    assert len(shipped) > 1 and [p.path for p in shipped] == made  # full packs sealed
    packed = {}
    for pack in shipped:
        data = open(pack.path, "rb").read()
        assert data.startswith(PACK_MAGIC) and pack.size == len(data)
        assert pack.pid == blake3.blake3(data).hexdigest()
        for cid_hex, offset, length, n in pack.chunks:
            packed[cid_hex] = decode(data[offset:offset + length], bytes.fromhex(cid_hex), n)
    want = {chunk_id(open(p, "rb").read()).hex(): open(p, "rb").read()
            for i, (p, *_rest) in enumerate(files) if i % 3}
    assert packed == want


def test_read_files_answers_each_case(tmp_path):
    small = tmp_path / "small"
    small.write_bytes(b"hello " * 10)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    grown = tmp_path / "grown"
    grown.write_bytes(b"0123456789")
    link = tmp_path / "link"
    os.symlink(small, link)

    def ask(path, size):
        st = os.lstat(path)
        return (str(path), st.st_dev, st.st_ino, size)

    answers, payloads = zip(*read_files([ask(small, 60), ask(empty, 0), ask(grown, 5),
                                         ask(link, 60), (str(tmp_path / "gone"), 0, 0, 3)],
                                        level=3), strict=True)
    status, (cid, n, codec, size) = answers[0]
    assert status == OK and cid == chunk_id(b"hello " * 10) and n == 60
    assert len(payloads[0]) == size and not any(payloads[1:])
    assert decode(bytes((codec,)) + bytes(payloads[0]), cid, n) == b"hello " * 10
    assert answers[1] == (OK, None)
    assert answers[2] == (GREW, None)
    assert answers[3][0] == FAILED and "symlink" in answers[3][1]
    assert answers[4][0] == FAILED and "No such file" in answers[4][1]


def test_batches_stay_under_their_limits():
    def item(i, size, name_len=20):
        return (i, FileEntry(f"p{i}", "file", 0o644, 0, size), Source("/" + "x" * name_len))

    out = list(batches(item(i, 1000) for i in range(300)))
    assert [len(b) for b in out] == [128, 128, 44]
    out = list(batches(item(i, 400_000) for i in range(5)))  # 1 MiB of data per request
    assert [len(b) for b in out] == [2, 2, 1]
    out = list(batches(item(i, 10, 4000) for i in range(20)))  # long paths: 24 KiB
    assert all(sum(len(s.path) for _, _, s in b) < 24 * 1024 for b in out) and len(out) == 4


class CancelOnceReading(threading.Event):
    """A cancel event that is set once reader processes run (the archiver checks it
    before each batch)."""

    saw_readers = False

    def is_set(self) -> bool:
        if not self.saw_readers and _readers():
            self.saw_readers = True
        return self.saw_readers


def test_a_cancelled_archive_stops_its_reader_processes(tmp_path):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(3000):
        (src / f"f{i:05}").write_bytes(os.urandom(200))
    cancel = CancelOnceReading()
    eng = engine(str(tmp_path / "repo"), **PROCESSES)
    with pytest.raises(Cancelled):
        eng.create([str(src)], owner="alice", principal=ALICE, name="c", cancel=cancel)
    assert cancel.saw_readers and not _readers()
    assert eng.list(owner="alice", principal=ALICE) == []


def test_restore_reads_in_small_ranges_round_trip(tmp_path):
    """Reads of 8 KiB at most: a big file restores from many ranges fetched ahead
    within a bounded budget, small files from many batches; the tree is identical."""
    src = tmp_path / "src"
    (src / "small").mkdir(parents=True)
    rng = random.Random(5)
    (src / "big.bin").write_bytes(rng.randbytes(700_000))
    (src / "text.csv").write_bytes(("".join(f"{i},{rng.random()}\n" for i in range(30_000)))
                                   .encode())
    for i in range(300):
        (src / "small" / f"{i:03}").write_bytes(rng.randbytes(rng.randint(0, 2_000)))
    eng = engine(str(tmp_path / "repo"), restore_range=8 * 1024)
    eng.create([str(src)], owner="alice", principal=ALICE, name="r")
    out = tmp_path / "out"
    res = eng.restore("r", target=str(out), owner="alice", principal=ALICE)
    assert res["state"]["status"] == "done"
    assert snapshot(str(out / "src")) == snapshot(str(src))


def test_a_negative_restore_range_is_refused_before_anything_is_written(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    eng = engine(str(tmp_path / "repo"))
    eng.create([str(src)], owner="alice", principal=ALICE, name="n")
    bad = engine(str(tmp_path / "repo"), restore_range=-1)
    with pytest.raises(ConfigError, match="restore_range: -1 is negative"):
        bad.restore("n", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert not (tmp_path / "out").exists()


def test_in_flight_bounds_waits_and_lets_an_oversized_job_run_alone():
    room = InFlight(100)
    assert room.take(60) and room.take(40)
    assert not room.take(1, wait=False)  # full
    got = threading.Event()

    def waiter():
        room.take(30)
        got.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not got.wait(0.2)  # waits for room
    room.give(40)
    assert got.wait(5)
    t.join()
    room.give(60)
    room.give(30)
    assert room.used == 0
    assert room.take(500)  # bigger than the limit: runs when nothing else does
    assert not room.take(1, wait=False)
    room.give(500)


def test_a_restore_keeps_its_reads_in_flight_under_the_limit(tmp_path, monkeypatch):
    """Batches of small files and a big file's read-ahead share one limit: the bytes
    taken at once never pass it (but for a single job bigger than the limit)."""
    peaks = []

    class Recorded(InFlight):
        def take(self, n, wait=True):
            ok = super().take(n, wait)
            if ok:
                peaks.append((self.used, n, self.limit))
            return ok

    monkeypatch.setattr(restore_mod, "InFlight", Recorded)
    src = tmp_path / "src"
    (src / "small").mkdir(parents=True)
    rng = random.Random(9)
    (src / "big.bin").write_bytes(rng.randbytes(3_000_000))
    for i in range(400):
        (src / "small" / f"{i:03}").write_bytes(rng.randbytes(rng.randint(0, 40_000)))
    eng = engine(str(tmp_path / "repo"), restore_range=64 * 1024)
    eng.create([str(src)], owner="alice", principal=ALICE, name="b")
    out = tmp_path / "out"
    eng.restore("b", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "src")) == snapshot(str(src))
    workers = max(2, eng.upload_workers)  # the restore's threads (engine.restore)
    assert {limit for _u, _n, limit in peaks} == {(workers + 2) * 64 * 1024}
    assert len(peaks) > 50
    assert all(used <= limit or used == n for used, n, limit in peaks), max(peaks)


def test_an_answer_larger_than_the_pipe_arrives_whole():
    """The reader writes a message and payloads with writev, which a pipe takes a
    part at a time; the other end reads the same message and bytes back."""
    parts = [os.urandom(n) for n in (70_000, 1, 0, 300_000, 5)]
    items = [(OK, (b"i" * 32, len(p), 0, len(p))) for p in parts]
    rfd, wfd = os.pipe()
    writer = threading.Thread(target=lambda: (write_all(wfd, [frame(items),
                                                             *parts]), os.close(wfd)))
    writer.start()
    with os.fdopen(rfd, "rb") as stream:
        assert read_message(stream) == items
        assert [stream.read(len(p)) for p in parts] == parts
        assert read_message(stream) is None  # the end of the stream
    writer.join()


def _tree_of(root, n: int) -> str:
    for i in range(n):
        d = root / f"d{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.txt").write_bytes(f"file {i}\n".encode() * (1 + i % 7))
    return str(root)


def test_reads_follow_the_scan(tmp_path, monkeypatch):
    """Small files go to the readers from the scan's first rows: the scan (held
    after its first page here) ends only once a batch was sent, and the archive
    has every file."""
    from jupyter_ext.archive import filetable

    src = _tree_of(tmp_path / "src", 2500)  # 3 pages of rows
    sent, flushes = threading.Event(), []
    submit, flush = ReaderPool.submit, filetable.FileTable.flush

    def submit_seen(self, *args):
        sent.set()
        return submit(self, *args)

    def slow_flush(self):
        flush(self)
        flushes.append(sent.is_set())
        if len(flushes) == 1:
            sent.wait(30)  # a scan the reads do not follow would wait here in vain

    monkeypatch.setattr(ReaderPool, "submit", submit_seen)
    monkeypatch.setattr(filetable.FileTable, "flush", slow_flush)
    eng = engine(str(tmp_path / "repo"), **PROCESSES)
    res = eng.create([src], owner="alice", principal=ALICE, name="a")
    assert flushes[0] is False and flushes[-1] is True  # sent while the scan still ran
    assert res["archive"]["files"] == 2500
    assert {p for p in _files(eng, "a") if p.endswith(".txt")} == {
        f"src/d{i // 100:03d}/f{i:05d}.txt" for i in range(2500)}


def test_a_failing_scan_fails_the_archive_and_a_failed_archive_stops_its_scan(
        tmp_path, monkeypatch):
    from jupyter_ext.archive import archiver

    src = _tree_of(tmp_path / "src", 50)
    walk = archiver.walk_sources

    def broken_walk(checked, out, skipped):
        walk(checked, out, skipped)
        raise OSError(5, "the disk went away")

    monkeypatch.setattr(archiver, "walk_sources", broken_walk)
    eng = engine(str(tmp_path / "repo"), **PROCESSES)
    with pytest.raises(OSError, match="the disk went away"):
        eng.create([src], owner="alice", principal=ALICE, name="a")
    assert eng.list(owner="alice", principal=ALICE) == []

    appended = []

    def endless_walk(checked, out, skipped):
        while len(appended) < 10**6:  # stops only when the table refuses more rows
            appended.append(1)
            out.append((FileEntry(f"src/x{len(appended)}", size=1),
                        Source(f"{src}/x", 1, len(appended))))

    def failing_reads(self, feed):
        next(feed, None)
        raise RuntimeError("a reader broke")

    monkeypatch.setattr(archiver, "walk_sources", endless_walk)
    monkeypatch.setattr(archiver.Archiver, "_small_files_by_readers", failing_reads)
    with pytest.raises(RuntimeError, match="a reader broke"):
        eng.create([src], owner="alice", principal=ALICE, name="b")
    assert len(appended) < 10**6  # the scan was stopped, not run to its end
    assert not [t for t in threading.enumerate() if t.name == "lens-scan"]
    assert eng.list(owner="alice", principal=ALICE) == []


def test_requests_in_flight_stay_bounded_however_many_packs_are_sealed(tmp_path, monkeypatch):
    """A reader holds the blobs of each request it answered until the archiver says
    which to keep: the requests in flight (not the seals) stay at the pool's bound
    whatever the number of packs sealed, so a reader's memory does not grow with
    the tree."""
    from jupyter_ext.archive.helpers import IN_FLIGHT
    from jupyter_ext.archive.readers import ReaderPack

    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(12)
    for i in range(3000):  # about 3 MB of random data: some 25 packs of 128 KiB
        (src / f"f{i:04}").write_bytes(rng.randbytes(rng.randint(200, 1800)))
    seen = []
    submit = ReaderPool.submit

    def counted(self, *args):
        seen.append(sum(not isinstance(tag, ReaderPack) for _, tag in self.queue))
        return submit(self, *args)

    monkeypatch.setattr(ReaderPool, "submit", counted)
    eng = engine(str(tmp_path / "repo"), **PROCESSES)
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    assert res["archive"]["packs"] > 10 and len(seen) > 20
    assert max(seen) < IN_FLIGHT * 2
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
