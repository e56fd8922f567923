"""A restore's entries on disk (RestoreTable) and its progress bits: the checks the
in-memory lists made, and resuming a restore whose state a previous lens saved."""

from __future__ import annotations

import os

import pytest

from jupyter_ext.archive.errors import NotFound, UnsafePath
from jupyter_ext.archive.manifest import DIR, FILE, SYMLINK, FileEntry
from jupyter_ext.archive.restoretable import Bits, RestoreTable, Selection

from .helpers import ALICE, engine, make_tree, snapshot

ID = "ab" * 32


def table_of(entries, paths=None) -> RestoreTable:
    table, chosen = RestoreTable(), Selection(paths)
    for e in entries:
        table.add(e, chosen.takes(e.path))
    table.keep(chosen)
    table.ready()
    return table


def test_selection_keeps_matches_and_the_folders_above_them():
    entries = [FileEntry("a", DIR), FileEntry("a/b", DIR), FileEntry("a/b/x.nc", FILE, chunks=[ID]),
               FileEntry("a/b/y.csv", FILE, chunks=[ID]), FileEntry("c", DIR),
               FileEntry("c/z.nc", FILE, chunks=[ID])]
    kept = [e.path for e in table_of(entries, ["*.nc"]).entries()]
    assert kept == ["a", "a/b", "a/b/x.nc", "c", "c/z.nc"]
    assert [e.path for e in table_of(entries, ["a/b/"]).entries()] == ["a", "a/b", "a/b/x.nc",
                                                                       "a/b/y.csv"]
    assert len(list(table_of(entries).entries())) == len(entries)
    with pytest.raises(NotFound, match="nothing in the archive matches"):
        table_of(entries, ["nowhere"])


def test_entries_keep_their_manifest_order_and_fields():
    entries = [FileEntry(f"f{i:05d}", FILE, 0o640, 123 + i, i, [ID] * (i % 3)) for i in range(2500)]
    table = table_of(entries)
    back = list(table.entries(FILE))
    assert [(e.seq, e.path, e.mode, e.mtime_ns, e.size, e.chunks) for e in back] == [
        (i, e.path, e.mode, e.mtime_ns, e.size, e.chunks) for i, e in enumerate(entries)]
    assert table.stats(FILE) == (2500, sum(range(2500)))
    assert [e.path for e in table.empty_files()] == [e.path for e in entries if not e.chunks]


def test_a_path_twice_in_the_manifest_is_refused():
    with pytest.raises(UnsafePath, match="'d/x' appears twice"):
        table_of([FileEntry("d", DIR), FileEntry("d/x", FILE), FileEntry("d/x", SYMLINK, target="y")])
    # across pages too
    with pytest.raises(UnsafePath, match="'f00007' appears twice"):
        table_of([FileEntry(f"f{i:05d}") for i in range(1500)] + [FileEntry("f00007")])


def test_entries_below_a_file_or_a_link_are_refused():
    with pytest.raises(UnsafePath, match="its parent 'd/x' is a file"):
        table_of([FileEntry("d", DIR), FileEntry("d/x", FILE), FileEntry("d/x/y", FILE)]).check_tree()
    with pytest.raises(UnsafePath, match="its parent 'l' is a symlink"):
        table_of([FileEntry("l", SYMLINK, target="d"), FileEntry("l/y", FILE)]).check_tree()
    # a sibling whose name only starts like the file's is fine
    table_of([FileEntry("d", DIR), FileEntry("d/x", FILE), FileEntry("d/x-2", FILE),
              FileEntry("d/x.bak", DIR), FileEntry("d/x.bak/y", FILE)]).check_tree()


def test_a_chain_of_links_leaving_the_root_is_refused():
    entries = [FileEntry("s", DIR), FileEntry("s/d", SYMLINK, target=".."),
               FileEntry("s/up", SYMLINK, target="d/../..")]
    with pytest.raises(UnsafePath, match="leaves the restore target"):
        table_of(entries).check_tree()


def test_bits_round_trip_and_refuse_another_size():
    bits = Bits(1000)
    for seq in (0, 7, 8, 999, 7):
        bits.add(seq)
    assert bits.count == 4 and 999 in bits and 998 not in bits
    again = Bits.decode(bits.encode(), 1000)
    assert [s for s in range(1000) if s in again] == [0, 7, 8, 999] and again.count == 4
    assert Bits.decode(bits.encode(), 2000).count == 0  # another selection: nothing done
    assert Bits.decode("not base64 !", 1000).count == 0


def test_a_restore_state_listing_paths_resumes(tmp_path):
    """A restore interrupted under a lens that saved lists of paths finishes under this one."""
    src = make_tree(str(tmp_path / "src"))
    eng = engine(str(tmp_path / "repo"))
    eng.create([src], owner="alice", principal=ALICE, name="a")
    out = tmp_path / "out"
    first = eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    files = sorted(os.path.relpath(os.path.join(d, n), out) for d, _s, names in os.walk(out)
                   for n in names)
    # the state as the older lens left it mid-way: half the files done, one deleted since
    repo = eng.repo("alice", ALICE)
    state = repo.load_state(first["state"]["id"])
    for key in ("done_bits", "new_bits", "done_count"):
        state.pop(key)
    state.update(status="downloading", done=files[: len(files) // 2], new_files=files)
    repo.save_state(state["id"], state)
    os.unlink(out / files[-1])
    second = eng.restore("a", target=str(out), owner="alice", principal=ALICE)
    assert second["state"]["status"] == "done" and "done" not in second["state"]
    assert second["state"]["done_count"] == len(files)
    assert snapshot(str(out / "data")) == snapshot(src)
