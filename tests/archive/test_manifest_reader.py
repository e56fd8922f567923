"""The manifest reader process: a restore's plan of a large archive reads its
manifest there, with the same plan, the same refusals, and nothing left running."""

from __future__ import annotations

import os
import re
import threading

import pytest
import zstandard

from jupyter_ext.archive import manifest_reader
from jupyter_ext.archive.errors import ArchiveError, IntegrityError, UnsafePath
from jupyter_ext.archive.manifest import FILE, SYMLINK, FileEntry
from jupyter_ext.archive.manifest_process import ROWS_PER_PAGE
from jupyter_ext.archive.repository import Repository
from jupyter_ext.archive.restore import plan_restore

from .helpers import ALICE, engine, helper_processes, make_tree, snapshot
from .test_security import _publish_crafted

IN_PROCESS, HELPER = 10**9, 0  # manifest_reader.HELPER_FROM for each way


def _leftovers() -> list:
    procs = helper_processes("manifest_process")
    return procs + [t for t in threading.enumerate() if t.name == "lens-manifest"]


def _tree(root: str) -> str:
    """make_tree's mix (big, text, empty, nested, a link) and 1,200 small files in
    12 folders: several pages of rows."""
    make_tree(root)
    for i in range(1200):
        d = os.path.join(root, "many", f"d{i % 12:02}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05}"), "wb") as f:
            f.write(b"%d\n" % (i % 700) * (i % 40))
    return root


def _archived(tmp_path) -> tuple:
    """(source, engine, create()'s summary) of ``_tree`` archived as "a"."""
    src = _tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    return src, eng, eng.create([src], owner="alice", principal=ALICE, name="a")


def _plan(eng, monkeypatch, way, paths=None) -> tuple:
    monkeypatch.setattr(manifest_reader, "HELPER_FROM", way)
    repo = eng.repo("alice", ALICE, create=False)
    plan = plan_restore(repo, "a", paths, eng.prices)
    with plan.table.lock:
        rows = plan.table.db.execute("SELECT * FROM f ORDER BY seq").fetchall()
    return plan.as_dict(), plan.packs, rows


@pytest.mark.parametrize("paths", [None, ["src/many/d03"], ["src/data/*.csv", "src/many/d1*/f0002?"]])
def test_the_reader_process_plans_what_this_process_plans(tmp_path, monkeypatch, paths):
    _src, eng, _made = _archived(tmp_path)
    ours = _plan(eng, monkeypatch, IN_PROCESS, paths)
    theirs = _plan(eng, monkeypatch, HELPER, paths)
    assert theirs == ours
    assert len(ours[2]) > 3 * ROWS_PER_PAGE or paths
    assert not _leftovers()


def test_a_restore_through_the_reader_process_is_the_tree(tmp_path, monkeypatch):
    src, eng, _made = _archived(tmp_path)
    monkeypatch.setattr(manifest_reader, "HELPER_FROM", HELPER)
    started = []

    class Seen(manifest_reader.ManifestReader):  # the real reader; its process is noted
        def __init__(self):
            super().__init__()
            started.append(self.proc.pid)

    monkeypatch.setattr(manifest_reader, "ManifestReader", Seen)
    out = tmp_path / "out"
    eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert snapshot(str(out / "src")) == snapshot(src)
    assert len(started) == 1
    assert not _leftovers()


@pytest.mark.parametrize("files", [
    [FileEntry("../escape.txt", FILE, 0o644)],
    [FileEntry("ok.txt", FILE, 0o644), FileEntry("link", SYMLINK, 0o777, target="/etc")],
    [FileEntry("d/link", SYMLINK, 0o777, target="../../outside")],
    [FileEntry("a/./b", FILE, 0o644)],
])
def test_the_reader_process_refuses_crafted_manifests_alike(tmp_path, monkeypatch, files):
    eng = engine(str(tmp_path / "repo"))
    _publish_crafted(eng, files, tmp_path)
    messages = []
    for way in (IN_PROCESS, HELPER):
        monkeypatch.setattr(manifest_reader, "HELPER_FROM", way)
        with pytest.raises(UnsafePath) as caught:
            eng.plan("crafted", owner="alice", principal=ALICE)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and messages[0]
    assert not _leftovers()


@pytest.mark.parametrize("damage", ["truncated", "not json", "not zstd", "bad chunk id"])
def test_a_damaged_manifest_is_the_same_integrity_error_from_the_reader(
        tmp_path, monkeypatch, damage):
    _src, eng, made = _archived(tmp_path)
    manifest_id = made["archive"]["manifest"]
    repo = Repository.open(eng.store, "alice", ALICE)
    path = os.path.join(str(tmp_path / "repo"), repo.key("manifests", manifest_id))
    with open(path, "rb") as f:
        stored = f.read()
    text = zstandard.ZstdDecompressor().decompressobj().decompress(stored)  # streamed: no size
    damaged = {
        "truncated": stored[:len(stored) // 2],
        "not json": zstandard.ZstdCompressor().compress(text[:-300] + b"}{" + text[-298:]),
        "not zstd": b"\x00" * 64 + stored[64:],
        "bad chunk id": zstandard.ZstdCompressor().compress(
            re.sub(rb'\["([0-9a-f]{64})"', rb'["zz\1"', text, count=1)),
    }[damage]
    with open(path, "wb") as f:
        f.write(damaged)
    messages = []
    for way in (IN_PROCESS, HELPER):
        monkeypatch.setattr(manifest_reader, "HELPER_FROM", way)
        with pytest.raises(IntegrityError) as caught:
            eng.restore("a", target=str(tmp_path / f"out{way}"), owner="alice",
                        principal=ALICE)
        messages.append(str(caught.value))
        assert not (tmp_path / f"out{way}").exists()
    assert messages[0] == messages[1]
    assert re.search({"truncated": "does not decode", "not json": "does not decode",
                      "not zstd": "does not decode", "bad chunk id": "malformed chunk id 'zz"
                      }[damage], messages[0]), messages[0]
    assert not _leftovers()


def test_a_reader_process_that_dies_is_reported_and_nothing_is_left(tmp_path, monkeypatch):
    _src, eng, _made = _archived(tmp_path)
    monkeypatch.setattr(manifest_reader, "HELPER_FROM", HELPER)

    class Dies(manifest_reader.ManifestReader):
        def pages(self):
            for i, page in enumerate(super().pages()):
                if i == 1:
                    self.proc.kill()  # killed with pages still to come
                    self.proc.wait()
                yield page

    monkeypatch.setattr(manifest_reader, "ManifestReader", Dies)
    with pytest.raises(ArchiveError, match=r"a manifest reader stopped \(exit code -9\); "
                                           "try again"):
        eng.restore("a", target=str(tmp_path / "out"), owner="alice", principal=ALICE)
    assert not (tmp_path / "out").exists()
    assert not _leftovers()
