"""Owner scoping and path-traversal refusal (including crafted manifests)."""

from __future__ import annotations

import os

import pytest

from jupyter_ext.archive.errors import AccessDenied, NotFound, UnsafePath
from jupyter_ext.archive.manifest import FILE, SYMLINK, ArchiveEntry, FileEntry, Manifest
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
