"""Owner scoping and path-traversal refusal (including crafted manifests)."""

from __future__ import annotations

import os

import pytest

from jupyter_ext.archive import zjson
from jupyter_ext.archive.errors import AccessDenied, NotFound, TooLarge, UnsafePath
from jupyter_ext.archive.manifest import DIR, FILE, SYMLINK, ArchiveEntry, FileEntry, Manifest
from jupyter_ext.archive.repository import Principal, Repository

from .helpers import ALICE, BOB, engine, make_tree


def test_one_owner_cannot_list_or_restore_anothers(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    src = make_tree(str(tmp_path / "src"))
    a = eng.create([src], owner="alice", principal=ALICE, name="secret")["archive"]
    with pytest.raises(AccessDenied):
        eng.list(owner="alice", principal=BOB)
    with pytest.raises(AccessDenied):
        eng.restore(a["id"], target=str(tmp_path / "x"), owner="user:alice", principal=BOB)
    with pytest.raises(AccessDenied):
        eng.plan("secret", owner="alice", principal=BOB)
    with pytest.raises(AccessDenied):
        eng.check(owner="alice", principal=BOB)
    # bob's own repository does not see alice's archive, by id or by name
    eng.create([src], owner="bob", principal=BOB, name="mine")
    assert [x["name"] for x in eng.list(owner="bob", principal=BOB)] == ["mine"]
    for ref in (a["id"], a["id"][:12], "secret"):
        with pytest.raises(NotFound):
            eng.restore(ref, target=str(tmp_path / "y"), owner="bob", principal=BOB)
    assert not (tmp_path / "y").exists() and not (tmp_path / "x").exists()


def test_group_repositories(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    src = make_tree(str(tmp_path / "src"))
    eng.create([src], owner="group:climate", principal=ALICE, name="shared")
    carol = Principal("carol", ("climate",))
    assert [x["name"] for x in eng.list(owner="group:climate", principal=carol)] == ["shared"]
    with pytest.raises(AccessDenied):
        eng.list(owner="group:climate", principal=BOB)
    admin = Principal("root", admin=True)
    assert eng.list(owner="group:climate", principal=admin)


def test_bad_owner_names_are_refused(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    for owner in ("user:../bob", "team:x", "user:a/b", "user:"):
        with pytest.raises(Exception, match="owner"):
            eng.list(owner=owner, principal=Principal("../bob", admin=True))


def _publish_crafted(eng, files, tmp_path):
    """Write a manifest + entry directly, as an attacker with store access could."""
    repo = Repository.open(eng.store, "alice", ALICE)
    src = tmp_path / "payload"
    src.mkdir(exist_ok=True)
    (src / "f").write_bytes(b"evil" * 100)
    real = eng.create([str(src)], owner="alice", principal=ALICE, name="real")
    chunks = repo.manifest(real["archive"]["manifest"]).files[1].chunks
    for f in files:
        if f.type == FILE:
            f.chunks, f.size = chunks, 400
    m = Manifest("crafted", "user:alice", "2030-01-01T00:00:00+00:00", files)
    data = m.to_bytes()  # to_bytes does not validate: that is the point
    import blake3

    mid = blake3.blake3(data).hexdigest()
    eng.store.put(repo.key("manifests", mid), data)
    repo.publish(ArchiveEntry(mid, "crafted", "user:alice", m.created, mid))
    return mid


@pytest.mark.parametrize("files", [
    [FileEntry("../escape.txt", FILE, 0o644)],
    [FileEntry("a/../../escape.txt", FILE, 0o644)],
    [FileEntry("/tmp/escape.txt", FILE, 0o644)],
    [FileEntry("ok.txt", FILE, 0o644), FileEntry("link", SYMLINK, 0o777, target="/etc")],
    [FileEntry("d/link", SYMLINK, 0o777, target="../../outside")],
])
def test_crafted_manifest_traversal_refused(tmp_path, files):
    eng = engine(str(tmp_path / "repo"))
    _publish_crafted(eng, files, tmp_path)
    target = tmp_path / "restore" / "here"
    before = set(os.listdir(tmp_path))
    with pytest.raises(UnsafePath):
        eng.restore("crafted", target=str(target), owner="alice", principal=ALICE)
    assert set(os.listdir(tmp_path)) == before | ({"restore"} if (tmp_path / "restore").exists()
                                                   else set())
    assert not (tmp_path / "restore" / "escape.txt").exists()
    assert not os.path.exists("/tmp/escape.txt")
    assert not target.exists() or not any(target.rglob("*"))


def test_existing_symlink_in_target_is_not_followed_outside(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    src = tmp_path / "src" / "d"
    src.mkdir(parents=True)
    (src / "f.txt").write_text("payload")
    eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(str(outside), target / "d")  # planted by someone else
    with pytest.raises(UnsafePath):
        eng.restore("a", target=str(target), owner="alice", principal=ALICE, overwrite=True)
    assert not (outside / "f.txt").exists()


def test_planted_symlink_cannot_create_directories_outside(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    src = tmp_path / "src" / "d"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "deep" / "er" / "f.txt").write_text("payload")
    eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(str(outside), target / "d")
    with pytest.raises(UnsafePath):
        eng.restore("a", target=str(target), owner="alice", principal=ALICE, overwrite=True)
    assert list(outside.iterdir()) == []


def test_archiving_a_tree_with_escaping_symlinks_skips_them(tmp_path):
    src = tmp_path / "src" / "d"
    src.mkdir(parents=True)
    (src / "ok.txt").write_text("fine")
    os.symlink("/etc/passwd", src / "abs")
    os.symlink("../../../outside", src / "up")
    os.symlink("ok.txt", src / "inside")
    eng = engine(str(tmp_path / "repo"))
    eng.create([str(src)], owner="alice", principal=ALICE, name="a")
    shown = eng.show("a", owner="alice", principal=ALICE)
    paths = {f["path"] for f in shown["files"]}
    assert paths == {"d", "d/ok.txt", "d/inside"}
    assert {"d/abs", "d/up"} <= set(shown["stats"]["skipped"])
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert os.readlink(out / "d" / "inside") == "ok.txt"
    assert not os.path.lexists(out / "d" / "abs")


def test_broken_progress_callback_does_not_break_the_archive(tmp_path):
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))

    def broken(_p):
        raise RuntimeError("widget went away")

    res = eng.create([src], owner="alice", principal=ALICE, name="a", progress=broken)
    assert res["archive"]["files"] == 4


# -- finding 2: hostile manifests and indexes in a readable repository ----------------

def _outside(tmp_path, target):
    """Everything under tmp_path except the repository and the restore target."""
    out = set()
    for dirpath, dirs, files in os.walk(tmp_path):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in
                   (str(tmp_path / "repo"), str(target))]
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out.add((full, st.st_mode, st.st_size, st.st_mtime_ns))
    return out


def _publish_with_writer(eng, name, files, *, meta=None, src_files=None, tmp_path):
    """Publish a crafted archive through the repository's own writers
    (Repository.put_manifest / publish), with chunks from a real archive."""
    repo = Repository.open(eng.store, "group:climate", ALICE)
    src = tmp_path / "payload"
    src.mkdir(exist_ok=True)
    (src / "f").write_bytes(b"data" * 100)
    real = eng.create([str(src)], owner="group:climate", principal=ALICE, name="real")
    chunks = repo.manifest(real["archive"]["manifest"]).files[1].chunks
    for f in files:
        if f.type == FILE:
            f.chunks, f.size = chunks, 400
    m = Manifest(name, "group:climate", "2030-01-01T00:00:00+00:00", files, meta=meta or {})
    mid, size = repo.put_manifest(m)
    repo.publish(ArchiveEntry(mid, name, "group:climate", m.created, mid))
    return repo, size


CHAINS = {
    # each link passes the lexical check alone; together s/up ends above the target
    "chain": [FileEntry("s", DIR, 0o755), FileEntry("s/d", SYMLINK, 0o777, target=".."),
              FileEntry("s/up", SYMLINK, 0o777, target="d/../..")],
    # a file written through a link of the same archive
    "through-link": [FileEntry("s", DIR, 0o755), FileEntry("s/d", SYMLINK, 0o777, target=".."),
                     FileEntry("s/d/f", FILE, 0o644)],
    # a loop never terminates resolution by itself
    "loop": [FileEntry("a", SYMLINK, 0o777, target="b"),
             FileEntry("b", SYMLINK, 0o777, target="a")],
}


@pytest.mark.parametrize("case", sorted(CHAINS))
def test_chained_link_escape_is_refused(tmp_path, case):
    """A group member crafts a manifest whose links chain out of the target."""
    eng = engine(str(tmp_path / "repo"))
    _publish_with_writer(eng, "evil", CHAINS[case], tmp_path=tmp_path)
    target = tmp_path / "target"
    target.mkdir()
    before = _outside(tmp_path, target)
    carol = Principal("carol", ("climate",))
    with pytest.raises(UnsafePath, match="chain of links|is a symlink|too many levels"):
        eng.restore("evil", target=str(target), owner="group:climate", principal=carol)
    assert list(target.iterdir()) == []
    assert _outside(tmp_path, target) == before


def test_link_chaining_through_a_link_already_in_the_target_is_refused(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    _publish_with_writer(eng, "evil", [
        FileEntry("s", DIR, 0o755), FileEntry("s/up", SYMLINK, 0o777, target="d/../..")],
        tmp_path=tmp_path)
    target = tmp_path / "target"
    (target / "s").mkdir(parents=True)
    os.symlink("..", target / "s" / "d")  # harmless alone: points at the target
    with pytest.raises(UnsafePath, match="chain of links"):
        eng.restore("evil", target=str(target), owner="group:climate", principal=ALICE,
                    overwrite=True)
    assert not os.path.lexists(target / "s" / "up")


def test_special_mode_bits_are_dropped_and_the_umask_applies(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    _publish_with_writer(eng, "modes", [
        FileEntry("d", DIR, 0o1777), FileEntry("d/suid", FILE, 0o4755),
        FileEntry("d/sgid", FILE, 0o2775), FileEntry("d/plain", FILE, 0o666)],
        tmp_path=tmp_path)
    target = tmp_path / "target"
    before = _outside(tmp_path, target)
    old = os.umask(0o027)
    try:
        res = eng.restore("modes", target=str(target), owner="group:climate", principal=ALICE)
    finally:
        os.umask(old)
    assert _outside(tmp_path, target) == before
    mode = {p: os.lstat(target / p).st_mode & 0o7777 for p in ("d", "d/suid", "d/sgid",
                                                                "d/plain")}
    assert mode == {"d": 0o750, "d/suid": 0o750, "d/sgid": 0o750, "d/plain": 0o640}
    assert sorted(res["state"]["modes_masked"]) == ["d", "d/sgid", "d/suid"]


def test_existing_folder_modes_are_left_alone_without_overwrite(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    _publish_with_writer(eng, "a", [FileEntry("d", DIR, 0o777), FileEntry("d/new", FILE, 0o644)],
                         tmp_path=tmp_path)
    target = tmp_path / "target"
    (target / "d").mkdir(parents=True)
    os.chmod(target / "d", 0o700)
    eng.restore("a", target=str(target), owner="group:climate", principal=ALICE)
    assert os.stat(target / "d").st_mode & 0o7777 == 0o700
    assert (target / "d" / "new").read_bytes() == b"data" * 100
    (target / "d" / "new").unlink()
    old = os.umask(0o022)
    try:
        eng.restore("a", target=str(target), owner="group:climate", principal=ALICE,
                    overwrite=True)
    finally:
        os.umask(old)
    assert os.stat(target / "d").st_mode & 0o7777 == 0o755


def test_manifest_decompression_bomb_is_refused(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    block = "x" * (1 << 20)
    pad = [block] * (zjson.MAX_MANIFEST_BYTES // len(block) + 4)  # one 1 MiB str, reused
    repo, size = _publish_with_writer(eng, "bomb", [FileEntry("f", FILE, 0o644)],
                                      meta={"pad": pad}, tmp_path=tmp_path)
    assert size < 128 * 1024  # a small object ...
    target = tmp_path / "target"
    before = _outside(tmp_path, target)
    with pytest.raises(TooLarge, match="manifest: decompresses to more than the 256 MiB"):
        eng.restore("bomb", target=str(target), owner="group:climate", principal=ALICE)
    assert not target.exists() and _outside(tmp_path, target) == before


def test_pack_index_decompression_bomb_is_refused(tmp_path):
    eng = engine(str(tmp_path / "repo"))
    src = make_tree(str(tmp_path / "src"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    repo = Repository.open(eng.store, "alice", ALICE)
    repo.load_index()
    fake = ["f" * (1 << 20), 0, 1, 1]  # one 1 MiB "chunk id", reused
    repo.add_pack(b"LENSPACK1\n", "e" * 64,
                  [fake] * (zjson.MAX_INDEX_BYTES // (1 << 20) + 2), "STANDARD")
    assert eng.store.head(repo.key("index", "e" * 64)).size < 64 * 1024
    target = tmp_path / "target"
    before = _outside(tmp_path, target)
    with pytest.raises(TooLarge, match="pack index: decompresses to more than the 64 MiB"):
        eng.restore("a", target=str(target), owner="alice", principal=ALICE)
    assert not target.exists() and _outside(tmp_path, target) == before


# -- finding 3: archiving as root never follows what a user swaps in -------------------

def _root_only(tmp_path, name="secret"):
    """A file only root can read (when the tests run as root), with content that
    does not compress, so it would show up verbatim in a pack."""
    d = tmp_path / "root-only"
    d.mkdir(mode=0o700, exist_ok=True)
    secret = d / name
    secret.write_bytes(os.urandom(4096))
    os.chmod(secret, 0o600)
    return secret


def _in_repository(repo_dir, needle: bytes) -> bool:
    for dirpath, _, files in os.walk(repo_dir):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                if needle in f.read():
                    return True
    return False


def test_file_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path):
    secret = _root_only(tmp_path)
    home = tmp_path / "home" / "seat"
    home.mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "swap.txt").write_text("scanned as a regular file")

    def swap(items):
        assert "seat/swap.txt" in {e.path for e, _ in items}  # the scan has run
        os.unlink(home / "swap.txt")
        os.symlink(secret, home / "swap.txt")

    eng = engine(str(tmp_path / "repo"))
    res = eng.create([str(home)], owner="alice", principal=Principal("root", admin=True),
                     name="seat", after_scan=swap)
    assert any(s.startswith("seat/swap.txt: replaced by a symlink") for s in res["skipped"])
    shown = eng.show("seat", owner="alice", principal=ALICE)
    assert {f["path"] for f in shown["files"]} == {"seat", "seat/notes.txt"}
    assert not _in_repository(tmp_path / "repo", secret.read_bytes()[:64])


def test_folder_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path):
    secret = _root_only(tmp_path, "data.bin")
    home = tmp_path / "home" / "seat"
    (home / "sub").mkdir(parents=True)
    (home / "sub" / "data.bin").write_bytes(b"x" * 10)

    def swap(items):
        os.rename(home / "sub", home / "old")
        os.symlink(secret.parent, home / "sub")  # same names, root's folder

    eng = engine(str(tmp_path / "repo"))
    res = eng.create([str(home)], owner="alice", principal=Principal("root", admin=True),
                     name="seat", after_scan=swap)
    assert any(s.startswith("seat/sub/data.bin: replaced by another file") for s in res["skipped"])
    assert not _in_repository(tmp_path / "repo", secret.read_bytes()[:64])


def test_file_swapped_for_a_fifo_after_the_scan_does_not_hang(tmp_path):
    import threading

    home = tmp_path / "home" / "seat"
    home.mkdir(parents=True)
    (home / "a.txt").write_text("fine")
    (home / "pipe").write_text("scanned as a regular file")

    def swap(items):
        os.unlink(home / "pipe")
        os.mkfifo(home / "pipe")  # nobody ever writes: a blocking open would hang

    eng = engine(str(tmp_path / "repo"))
    out: dict = {}

    def run():
        out["res"] = eng.create([str(home)], owner="alice", principal=Principal("root", admin=True),
                                name="seat", after_scan=swap)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "archiving hung on a FIFO"
    assert any(s.startswith("seat/pipe: replaced by a FIFO") for s in out["res"]["skipped"])
    shown = eng.show("seat", owner="alice", principal=ALICE)
    assert {f["path"] for f in shown["files"]} == {"seat", "seat/a.txt"}
