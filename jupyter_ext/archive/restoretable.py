"""A restore's entries, kept on local disk (a temp sqlite file), and its progress bits.

Held as Python objects, a manifest's entries cost about 550 bytes a file (paths and
hex chunk ids as str), and a restore's lists of finished and new paths as much
again, so a restore's memory grew with the file count. Here an entry is one row,
read back a page at a time, and a restore's progress is one bit per entry: memory
stays bounded by sqlite's page cache whatever the tree's size. The database file
is unlinked as soon as it is opened, so a killed restore leaves nothing behind.
"""

from __future__ import annotations

import base64
import fnmatch
import sqlite3
import threading
import zlib
from dataclasses import dataclass

from .chunkindex import temp_db
from .errors import NotFound, UnsafePath
from .filetable import split_ids
from .manifest import DIR, FILE, SYMLINK, FileEntry, resolve_inside
from .manifest_process import row_of

PAGE = 1000  # rows read or written per statement
_COLS = "seq, path, type, mode, mtime, size, target, chunks"


@dataclass(slots=True)
class PlannedEntry(FileEntry):
    """A manifest entry with its place in the restore (``seq``: manifest order)."""

    seq: int = 0
    # a small file's (offset, length) in its batch's pack: for a file of one chunk,
    # that chunk's place, known from the plan (no index lookup while writing)
    span: tuple = ()


class Selection:
    """Which entries a restore of ``paths`` takes: exact paths, folder prefixes and
    globs, and the folders above them; everything when ``paths`` is empty."""

    def __init__(self, paths: list[str] | None):
        self.patterns = [p.strip("/") for p in paths or []]
        self.above: set[str] = set()  # folders above chosen entries (few: one per folder)
        self.any = False

    def takes(self, path: str) -> bool:
        if not self.patterns:
            self.any = True
            return True
        hit = any(path == p or path.startswith(p + "/") or fnmatch.fnmatchcase(path, p)
                  for p in self.patterns)
        if hit:
            self.any = True
            parts = path.split("/")
            self.above.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return hit


class RestoreTable:
    """The entries a restore writes, in manifest order (``seq``). Thread-safe: one
    connection behind a lock."""

    def __init__(self, directory: str | None = None):
        self.db = temp_db("lens-restore-", directory)  # unlinked: a kill leaves no file
        # small files (one pack, up to the batch size) get the pack range they occupy
        self.db.execute(
            "CREATE TABLE f (seq INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, type TEXT, "
            "mode INT, mtime INT, size INT, target TEXT, chunks BLOB, chosen INT, "
            "pack TEXT, lo INT, hi INT)")
        self.lock = threading.Lock()
        self._pending: list = []
        self.size = 0  # entries added (the bitmaps' length)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -- filling ------------------------------------------------------------------
    def add(self, entry: FileEntry, chosen: bool, span: tuple | None = None) -> None:
        """``add_row`` of a FileEntry."""
        self.add_row(row_of(entry), chosen, span)

    def add_row(self, row: tuple, chosen: bool, span: tuple | None = None) -> None:
        """Add a manifest row (``manifest_process.row_of``); ``span``: a small
        file's ``(pack, lo, hi)``, the range it occupies there (restored in a batch)."""
        path, kind, mode, mtime, size, ids, target = row
        self._pending.append((self.size, path, kind, mode, mtime, size, target, b"".join(ids),
                              int(chosen), *(span or (None, None, None))))
        self.size += 1
        if len(self._pending) >= PAGE:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            try:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO f (seq, path, type, mode, mtime, size, target, "
                                    "chunks, chosen, pack, lo, hi) VALUES "
                                    "(?,?,?,?,?,?,?,?,?,?,?,?)", self._pending)
                self.db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self.db.execute("ROLLBACK")
                raise UnsafePath(f"path {self._duplicate()!r} appears twice in the manifest"
                                 ) from None
        self._pending = []

    def _duplicate(self) -> str:
        """The pending path that is already in the table or pending twice."""
        seen: set = set()
        for row in self._pending:
            if row[1] in seen or self.db.execute("SELECT 1 FROM f WHERE path = ?",
                                                 (row[1],)).fetchone():
                return row[1]
            seen.add(row[1])
        return "?"

    def ready(self) -> None:
        """After the last ``add``: write the rest and index the batch order."""
        self.flush()
        with self.lock:
            self.db.execute("CREATE INDEX IF NOT EXISTS f_range ON f (pack, lo, seq) "
                            "WHERE pack IS NOT NULL")

    def keep(self, selection: Selection) -> None:
        """Keep the chosen entries and the folders above them; NotFound if none."""
        self.flush()
        if not selection.any:
            raise NotFound(f"paths: nothing in the archive matches {selection.patterns}")
        if not selection.patterns:
            return
        above = sorted(selection.above)
        with self.lock:
            self.db.execute("BEGIN")
            for i in range(0, len(above), PAGE):
                part = above[i:i + PAGE]
                self.db.execute(f"UPDATE f SET chosen = 1 WHERE path IN "
                                f"({','.join('?' * len(part))})", part)
            self.db.execute("DELETE FROM f WHERE chosen = 0")
            self.db.execute("COMMIT")

    # -- reading --------------------------------------------------------------------
    def stats(self, kind: str = FILE) -> tuple[int, int]:
        """(entries of ``kind``, their bytes)."""
        with self.lock:
            return self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM f "
                                   "WHERE type = ?", (kind,)).fetchone()

    def count_small(self) -> int:
        """Files restored in batches (small ones, in one pack)."""
        with self.lock:
            return self.db.execute("SELECT count(*) FROM f WHERE pack IS NOT NULL").fetchone()[0]

    def pages(self, where: str = "1", args: tuple = ()):
        """Lists of entries in manifest order, PAGE at a time (keyset paging)."""
        last = -1
        while True:
            with self.lock:
                rows = self.db.execute(f"SELECT {_COLS} FROM f WHERE seq > ? AND ({where}) "
                                       f"ORDER BY seq LIMIT {PAGE}", (last, *args)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_entry(r) for r in rows]

    def entries(self, kind: str | None = None):
        for page in self.pages("type = ?", (kind,)) if kind else self.pages():
            yield from page

    def big_files(self):
        """Regular files with data that are not restored in batches, in manifest order."""
        for page in self.pages("type = ? AND chunks != x'' AND pack IS NULL", (FILE,)):
            yield from page

    def empty_files(self):
        for page in self.pages("type = ? AND chunks = x''", (FILE,)):
            yield from page

    def small_files(self):
        """``(pack, lo, hi, entry)`` of the files restored in batches, by pack and offset:
        one cursor over the range index, fetched PAGE rows at a time (nothing writes
        the table once the plan is made)."""
        for pack, lo, hi, *row in self._stream(
                f"SELECT pack, lo, hi, {_COLS} FROM f WHERE pack IS NOT NULL "
                "ORDER BY pack, lo, seq"):
            yield pack, lo, hi, _entry(row)

    def sizes(self, kind: str = FILE):
        """``(seq, size)`` of the entries of ``kind``: no entry is built."""
        yield from self._stream("SELECT seq, size FROM f WHERE type = ? ORDER BY seq", (kind,))

    def dirs_deepest_first(self):
        """The folders, deepest first (a folder's mode is set after its contents')."""
        for row in self._stream(f"SELECT {_COLS} FROM f WHERE type = ? ORDER BY "
                                "length(path) - length(replace(path, '/', '')) DESC, seq", (DIR,)):
            yield _entry(row)

    def _stream(self, sql: str, args: tuple = ()):
        """The rows of one query through one cursor, fetched PAGE at a time (nothing
        writes the table once the plan is made, so the cursor stays valid)."""
        with self.lock:
            cur = self.db.execute(sql, args)
        while True:
            with self.lock:
                rows = cur.fetchmany(PAGE)
            if not rows:
                return
            yield from rows

    def lookup(self, path: str) -> PlannedEntry | None:
        with self.lock:
            row = self.db.execute(f"SELECT {_COLS} FROM f WHERE path = ?", (path,)).fetchone()
        return _entry(row) if row else None

    def folders_of_entries(self) -> set[str]:
        """The folders holding entries ("" for the top): one string per folder."""
        with self.lock:
            return {path.rpartition("/")[0] for (path,) in self.db.execute("SELECT path FROM f")}

    # -- checks ---------------------------------------------------------------------
    def check_tree(self, existing_link=None) -> None:
        """Refuse an entry set whose links, taken together, leave the root.

        ``check_link`` looks at one link lexically; a chain (``s/d -> ..`` then
        ``s/up -> d/../..``) passes it link by link. Here every link target is
        resolved component by component through the archive's other links and,
        via ``existing_link(path) -> target | None``, through links already present
        where the entries will be written. Entries below a link or a file of the
        same archive are refused too."""
        with self.lock:
            # '/' sorts right before '0': children of X are the paths in [X/, X0)
            row = self.db.execute(
                "SELECT b.path, a.path, a.type FROM f a JOIN f b ON b.path > a.path || '/' "
                "AND b.path < a.path || '0' WHERE a.type != ? LIMIT 1", (DIR,)).fetchone()
        if row:
            raise UnsafePath(f"path {row[0]!r}: its parent {row[1]!r} is a {row[2]} "
                             "in the archive")

        def link_of(path: str) -> str | None:
            e = self.lookup(path)
            if e is not None:
                return e.target if e.type == SYMLINK else None
            return existing_link(path) if existing_link else None

        for f in self.entries(SYMLINK):
            resolve_inside(f.path, f.target, link_of)


def _entry(row) -> PlannedEntry:
    seq, path, kind, mode, mtime, size, target, chunks = row
    return PlannedEntry(path, kind, mode, mtime, size, split_ids(chunks), target or "", 0, 0,
                        seq)


class Bits:
    """One bit per entry (by ``seq``): finished, or absent when the restore began.
    Kept in the restore's state as base64 of its zlib stream."""

    def __init__(self, size: int, data: bytes | None = None):
        self.size = size
        self.data = bytearray(data) if data is not None else bytearray((size + 7) // 8)
        self.count = sum(bin(b).count("1") for b in self.data)

    def __contains__(self, seq: int) -> bool:
        return bool(self.data[seq >> 3] & (1 << (seq & 7)))

    def add(self, seq: int) -> None:
        if seq not in self:
            self.data[seq >> 3] |= 1 << (seq & 7)
            self.count += 1

    def encode(self) -> str:
        return base64.b64encode(zlib.compress(bytes(self.data), 6)).decode()

    @classmethod
    def decode(cls, text: str | None, size: int) -> Bits:
        """The bits saved by ``encode`` for ``size`` entries; empty when they do not
        fit (a state from another selection: nothing is taken as done)."""
        if text:
            try:
                data = zlib.decompress(base64.b64decode(text))
            except (ValueError, zlib.error):
                data = b""
            if len(data) == (size + 7) // 8:
                return cls(size, data)
        return cls(size)
