"""How the archiver reads: small files in one read, big ones chunked, both at once.

A file under the chunker's minimum is read with one ``read`` (no chunker); what is
read wins over what the scan saw, whether the file grew (past the minimum: chunked
after all), shrank or emptied between the scan and the read."""

from __future__ import annotations

import random

from jupyter_ext.archive.chunks import chunk_id

from .helpers import ALICE, engine, snapshot


def _files(eng, name):
    return {f["path"]: f for f in eng.show(name, owner="alice", principal=ALICE)["files"]}


def test_small_files_changed_between_scan_and_read_are_archived_as_read(tmp_path):
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

    eng = engine(str(tmp_path / "repo"))
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


def test_many_small_and_big_files_together_round_trip(tmp_path):
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
    for b in range(4):
        (src / f"big{b}.bin").write_bytes(rng.randbytes(150_000 + b * 40_000))
    (src / "dup.bin").write_bytes((src / "big0.bin").read_bytes())  # deduplicated

    eng = engine(str(tmp_path / "repo"))
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="m")
    assert res["archive"]["files"] == 8 * 150 + 5 and not res["skipped"]
    assert res["progress"]["files_done"] == res["archive"]["files"]
    out = tmp_path / "out"
    eng.restore("m", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "mixed")) == snapshot(str(src))
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
    # the same data once more under another name: every file is the parent's
    again = eng.create([str(src)], owner="alice", principal=ALICE, name="m2")
    assert again["progress"]["bytes_new"] == 0
