"""The local directory store end to end: archive, dedup, search, restore, verify."""

from __future__ import annotations

import os
import threading
import time

import pytest

from jupyter_ext.archive.errors import Cancelled, Exists, IntegrityError, NotFound
from jupyter_ext.archive.repository import PackIndex, Repository

from .helpers import ALICE, engine, make_tree, snapshot


def test_round_trip_is_byte_identical(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    seen = []
    res = eng.create([src], owner="alice", principal=ALICE, name="run1",
                     tags={"project": "ice"}, meta={"doi": "10.1/x"}, progress=seen.append)
    assert res["archive"]["files"] == 4  # regular files; the symlink is an entry too
    assert seen and seen[-1].phase == "done" and seen[-1].files_done == 4
    last = seen[-1].as_dict()
    assert {"bytes_done", "files_done", "dedup_ratio", "mb_per_s", "eta"} <= set(last)
    out = tmp_path / "out"
    res = eng.restore("run1", target=str(out), owner="alice", principal=ALICE)
    assert res["state"]["status"] == "done"
    assert snapshot(str(out / "data")) == snapshot(src)
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok


def test_dedup_across_archives_and_unchanged_files_skipped(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    first = eng.create([src], owner="alice", principal=ALICE, name="a")
    # a different archive name (no parent to reuse) still stores nothing new
    second = eng.create([src], owner="alice", principal=ALICE, name="b")
    assert second["progress"]["bytes_new"] == 0
    assert second["archive"]["added_bytes"] == 0
    # change 1 byte in the big file: only the chunks around it are new
    path = os.path.join(src, "random.bin")
    with open(path, "r+b") as f:
        f.seek(150_000)
        f.write(b"\xff")
    third = eng.create([src], owner="alice", principal=ALICE, name="a")
    assert 0 < third["progress"]["bytes_new"] < 0.5 * first["progress"]["bytes_new"]
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "data")) == snapshot(src)


def test_parent_is_the_latest_archive_of_the_same_paths_whatever_its_name(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_bytes(b"x" * 100)
    eng = engine(str(tmp_path / "repo"))
    first = eng.create([src], owner="alice", principal=ALICE, name="run-2026-12-01")
    assert first["parent"] == "" and first["unchanged_files"] == 0
    eng.create([str(other)], owner="alice", principal=ALICE, name="run-2026-12-01")
    # the same paths under a new name: every file is taken from the first archive
    second = eng.create([src], owner="alice", principal=ALICE, name="run-2026-12-02")
    assert second["parent"] == first["archive"]["id"]
    assert second["unchanged_files"] == second["archive"]["files"] == 4
    # the same size and mtime, new content (the mtime set back): the ctime tells
    table = os.path.join(src, "table.csv")
    st = os.stat(table)
    time.sleep(0.02)
    with open(table, "r+b") as f:
        old = f.read(5)
        f.seek(0)
        f.write(bytes(reversed(old)) if old != old[::-1] else b"zzzzz")
    os.utime(table, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(table).st_size == st.st_size
    assert os.stat(table).st_mtime_ns == st.st_mtime_ns
    third = eng.create([src], owner="alice", principal=ALICE, name="run-2026-12-03")
    assert third["parent"] == second["archive"]["id"]
    assert third["unchanged_files"] == 3 and third["progress"]["bytes_new"] > 0
    # replaced by another file (new inode) of the same size, mtime set back: read again
    notes = os.path.join(src, "nested", "notes.txt")
    st = os.stat(notes)
    with open(notes + ".new", "wb") as f:
        f.write(b"LENS ARCHIVE TEST\n" * 2000)
    os.replace(notes + ".new", notes)
    os.utime(notes, ns=(st.st_atime_ns, st.st_mtime_ns))
    fourth = eng.create([src], owner="alice", principal=ALICE, name="run-2026-12-04")
    assert fourth["unchanged_files"] == 3
    out = tmp_path / "out"
    eng.restore("run-2026-12-04", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "data")) == snapshot(src)
    # --parent picks one explicitly; an unknown one is refused before anything is stored
    fifth = eng.create([src], owner="alice", principal=ALICE, name="again",
                       parent=first["archive"]["id"][:12])
    assert fifth["parent"] == first["archive"]["id"] and fifth["unchanged_files"] == 2
    with pytest.raises(NotFound):
        eng.create([src], owner="alice", principal=ALICE, name="again", parent="0" * 64)


@pytest.mark.parametrize("readers", [0, 2], ids=["thread", "processes"])
def test_unchanged_files_whose_pack_is_lost_are_read_again(tmp_path, readers):
    """An unchanged file takes its parent's chunk ids only while they are stored: with
    a pack and its index gone, the files it held are read again, the rest reused."""
    import random

    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(11)
    for i in range(300):
        (src / f"f{i:03}").write_bytes(rng.randbytes(rng.randint(1, 3000)))
    eng = engine(str(tmp_path / "repo"), readers_from=1, reader_processes=readers)
    first = eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    assert first["archive"]["packs"] > 1
    repo = tmp_path / "repo" / "users" / "alice"
    lost = sorted(os.listdir(repo / "index"))[0]
    held = len(PackIndex.from_bytes((repo / "index" / lost).read_bytes()).chunks)
    os.unlink(repo / "index" / lost)
    os.unlink(repo / "data" / lost[:2] / lost)
    second = eng.create([str(src)], owner="alice", principal=ALICE, name="b")
    assert second["parent"] == first["archive"]["id"]
    assert 0 < held and second["unchanged_files"] == 300 - held
    # the files read again stored the lost chunks again: both archives are whole
    assert eng.check(owner="alice", principal=ALICE, read_data=True).ok
    out = tmp_path / "out"
    eng.restore("b", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "src")) == snapshot(str(src))


def test_metadata_is_separate_from_packs(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    top = sorted(os.listdir(tmp_path / "repo" / "users" / "alice"))
    assert top == ["archives", "config", "data", "index", "manifests"]


def test_search_by_name_tag_date_and_path(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.nc").write_bytes(b"x" * 100)
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="obs-2024", tags={"kind": "obs"})
    eng.create([str(other)], owner="alice", principal=ALICE, name="model-run",
               tags={"kind": "model"})

    def names(**kw):
        return sorted(a["name"] for a in eng.list(owner="alice", principal=ALICE, **kw))

    assert names() == ["model-run", "obs-2024"]
    assert names(name="obs-*") == ["obs-2024"]
    assert names(tags={"kind": "model"}) == ["model-run"]
    assert names(path="*.nc") == ["model-run"]
    assert names(path="data/nested/*") == ["obs-2024"]
    assert names(since="2000-01-01") == ["model-run", "obs-2024"]
    assert names(until="2000-01-01") == []
    assert names(text="obs") == ["obs-2024"]


def test_partial_restore_and_plan(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    full = eng.plan("a", owner="alice", principal=ALICE)
    part = eng.plan("a", ["data/nested"], owner="alice", principal=ALICE)
    assert part.as_dict()["files"] == 1 and part.bytes_to_read < full.bytes_to_read
    assert len(part.packs) <= len(full.packs)
    out = tmp_path / "out"
    eng.restore("a", ["data/nested"], target=str(out), owner="alice", principal=ALICE)
    assert sorted(os.listdir(out / "data")) == ["nested"]
    assert (out / "data/nested/notes.txt").read_text().startswith("lens archive test")
    assert (os.stat(out / "data/nested/notes.txt").st_mode & 0o777) == 0o640


def test_never_overwrites_without_flag(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "table.csv").write_text("mine")
    with pytest.raises(Exists, match="table.csv"):
        eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert (out / "data" / "table.csv").read_text() == "mine"
    assert not (out / "data" / "random.bin").exists()  # refused before writing anything
    eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)
    assert snapshot(str(out / "data")) == snapshot(src)


def test_restore_over_an_existing_copy_keeps_only_verified_identical_files(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    data = out / "data"
    kept = os.stat(data / "random.bin").st_ino
    os.chmod(data / "random.bin", 0o600)  # same content, other mode: kept, mode fixed
    with open(data / "table.csv", "r+b") as f:  # same size, other content: rewritten
        f.write(b"#")
    os.utime(data / "table.csv", ns=(0, os.stat(src + "/table.csv").st_mtime_ns))
    # a hard link to a file outside the target, with the archive's content: replaced,
    # never chmodded in place
    outside = tmp_path / "outside.txt"
    outside.write_bytes((data / "nested" / "notes.txt").read_bytes())
    os.chmod(outside, 0o600)
    os.unlink(data / "nested" / "notes.txt")
    os.link(outside, data / "nested" / "notes.txt")
    eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)
    assert snapshot(str(data)) == snapshot(src)
    assert os.stat(data / "random.bin").st_ino == kept
    assert os.stat(outside).st_mode & 0o777 == 0o600
    assert os.stat(data / "nested" / "notes.txt").st_ino != os.stat(outside).st_ino


def test_restore_over_an_identical_copy_reads_no_pack(tmp_path):
    """Files already holding their content (hashed against the archive) are kept
    without reading or decoding their data: with every pack moved away, a restore
    over an identical copy still completes; a changed file then needs its pack."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(200):
        (src / f"f{i:03}.txt").write_text(f"small file {i}\n" * (i + 1))
    (src / "big.bin").write_bytes(os.urandom(3_000_000))
    repo = tmp_path / "repo"
    eng = engine(str(repo))
    eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    packs = [os.path.join(d, n) for d, _s, names in os.walk(repo) for n in names
             if os.sep + "data" + os.sep in os.path.join(d, n)]
    assert packs
    for p in packs:
        os.rename(p, p + ".away")
    res = eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)
    assert res["state"]["status"] == "done"
    assert snapshot(str(out / "src")) == snapshot(str(src))
    (out / "src" / "f007.txt").write_text("changed")
    with pytest.raises(IntegrityError, match="f007.txt: pack .* is missing"):
        eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)


def test_flipped_byte_fails_loudly_naming_the_file(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    repo = Repository.open(eng.store, "alice", ALICE)
    manifest = repo.manifest(repo.resolve("a"))
    csv = next(f for f in manifest.files if f.path == "data/table.csv")
    loc = repo.locate(bytes.fromhex(csv.chunks[1]))
    path = os.path.join(eng.store.root, repo.pack_key(loc.pack))
    with open(path, "r+b") as f:
        f.seek(loc.offset + loc.length // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="data/table.csv"):
        eng.restore("a", ["data/table.csv"], target=str(out), owner="alice", principal=ALICE)
    assert not (out / "data" / "table.csv").exists()
    assert not [n for n in os.listdir(out / "data") if "lens-tmp" in n]
    report = eng.check(owner="alice", principal=ALICE, read_data=True)
    assert not report.ok and any(loc.pack[:16] in e for e in report.errors)
    assert eng.check(owner="alice", principal=ALICE).ok  # structure alone is still fine


def test_a_chunk_missing_from_the_index_fails_the_plan_naming_the_file(tmp_path):
    """The plan looks every chunk up before anything is written: a pack index gone
    from the repository fails it, naming a file whose chunk it held."""
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    repo = Repository.open(eng.store, "alice", ALICE)
    notes = next(f for f in repo.manifest(repo.resolve("a")).files
                 if f.path == "data/nested/notes.txt")
    pack = repo.locate(bytes.fromhex(notes.chunks[0])).pack
    os.unlink(os.path.join(eng.store.root, repo.key("index", pack)))
    eng = engine(str(tmp_path / "repo"))  # no index cached from before
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match=r"data/nested/notes\.txt: chunk [0-9a-f]{16} "
                       "is missing from the repository"):
        eng.restore("a", ["data/nested/notes.txt"], target=str(out), owner="alice",
                    principal=ALICE)
    assert not out.exists()


def test_cancel_then_resume(tmp_path):
    src = make_tree(str(tmp_path / "src"), scale=4)
    eng = engine(str(tmp_path / "repo"))
    cancel = threading.Event()

    def stop_after_first_pack(p):
        if p.packs >= 1:
            cancel.set()

    with pytest.raises(Cancelled):
        eng.create([src], owner="alice", principal=ALICE, name="a",
                   progress=stop_after_first_pack, cancel=cancel)
    assert eng.list(owner="alice", principal=ALICE) == []  # not visible
    assert eng.check(owner="alice", principal=ALICE).ok
    stored = sum(1 for _ in eng.store.list("users/alice/index/"))
    assert stored >= 1
    res = eng.create([src], owner="alice", principal=ALICE, name="a")
    assert res["progress"]["bytes_new"] < res["progress"]["bytes_total"]
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "data")) == snapshot(src)


def test_dry_run_costs_stores_nothing(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    res = eng.create([src], owner="alice", principal=ALICE, name="a", dry_run=True,
                     storage_class="GLACIER")
    assert res["archive"] is None
    rows = {r["storage_class"]: r for r in res["costs"]}
    assert rows["GLACIER"]["objects"] >= 1 and rows["GLACIER"]["min_days"] == 90
    assert rows["GLACIER"]["billed_bytes"] > rows["STANDARD"]["billed_bytes"]  # 40 KB overhead
    assert rows["DEEP_ARCHIVE"]["early_delete_30d_micro"] > 0
    assert rows["STANDARD"]["early_delete_30d_micro"] == 0
    assert not list(eng.store.list("users/alice/data/"))
    assert eng.list(owner="alice", principal=ALICE) == []


def test_file_vanishing_mid_archive_is_skipped_not_fatal(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    doomed = os.path.join(src, "doomed.txt")
    with open(doomed, "w") as f:
        f.write("here at scan time")

    def vanish(p):
        if p.phase == "archive" and os.path.exists(doomed):
            os.unlink(doomed)  # after the scan, before it is read

    eng = engine(str(tmp_path / "repo"))
    res = eng.create([src], owner="alice", principal=ALICE, name="a", progress=vanish)
    assert res["archive"]["files"] == 4
    shown = eng.show("a", owner="alice", principal=ALICE)
    assert "data/doomed.txt" not in {f["path"] for f in shown["files"]}
    assert any("doomed.txt" in s for s in shown["stats"]["skipped"])
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "data")) == snapshot(src)


def test_restore_with_temp_names_when_names_are_taken(tmp_path, monkeypatch):
    from jupyter_ext.archive.restore import Restorer

    # every name taken since the restore began: each file goes to a temp name, renamed
    monkeypatch.setattr(Restorer, "_create_new", lambda self, f, pfd, name, mode: None)
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    eng.restore("a", target=str(out), owner="alice", principal=ALICE, overwrite=True)
    assert snapshot(str(out / "data")) == snapshot(src)
    assert not [n for _d, _s, names in os.walk(out) for n in names if "lens-tmp" in n]


def test_odd_posix_names_round_trip_and_non_utf8_names_are_reported(tmp_path):
    """Backslashes and colons are ordinary in POSIX names (systemd units hold `\\x2d`);
    a name that is not UTF-8 cannot go into the manifest: it is skipped and named."""
    src = tmp_path / "src"
    (src / "C:").mkdir(parents=True)
    (src / "C:" / "x").write_text("drive-like folder")
    (src / "system-systemd\\x2dcryptsetup.slice").write_text("unit")
    (src / "c:notes").write_text("colon")
    with open(os.fsencode(src) + b"/caf\xe9-latin1.txt", "wb") as f:
        f.write(b"latin-1 name")
    eng = engine(str(tmp_path / "repo"))
    res = eng.create([str(src)], owner="alice", principal=ALICE, name="odd")
    assert res["archive"]["files"] == 3
    assert [s for s in res["skipped"] if "caf\\xe9-latin1.txt" in s and "not UTF-8" in s]
    out = tmp_path / "out"
    eng.restore("odd", target=str(out), owner="alice", principal=ALICE)
    assert (out / "src" / "system-systemd\\x2dcryptsetup.slice").read_text() == "unit"
    assert (out / "src" / "C:" / "x").read_text() == "drive-like folder"
    assert (out / "src" / "c:notes").read_text() == "colon"
