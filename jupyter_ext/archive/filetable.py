"""The archiver's list of scanned files, kept on local disk (a temp sqlite file).

Held as Python objects, a scanned file cost about 1 KB (entry, source, chunk ids),
so the archiver's memory grew with the file count. Here a file is one row: memory
stays bounded by sqlite's page cache whatever the tree's size. The database file
is unlinked as soon as it is opened, so a killed archiver leaves nothing behind.
"""

from __future__ import annotations

import threading

from .chunkindex import temp_db
from .errors import Cancelled
from .manifest import FILE, FileEntry
from .sources import Source

PAGE = 1000  # rows read or written per statement
_COLS = "seq, path, type, mode, mtime, size, target, ctime, ino, dev, src, chunks"
_ROW_COLS = "seq, path, type, mode, mtime, size, chunks, target, ctime, ino"  # ROW_FIELDS


class FileTable:
    """Scanned entries in scan order (``seq``), with their chunk ids once read.
    Thread-safe: one connection behind a lock."""

    def __init__(self, directory: str | None = None):
        self.db = temp_db("lens-files-", directory)  # unlinked: a kill leaves no file
        self.db.execute(
            "CREATE TABLE f (seq INTEGER PRIMARY KEY, path TEXT, type TEXT, mode INT, "
            "mtime INT, size INT, target TEXT, ctime INT, ino INT, dev INT, src TEXT, "
            "chunks BLOB, skip INT DEFAULT 0, plain INT)")
        self.db.execute("CREATE TABLE parent (path TEXT PRIMARY KEY, type TEXT, size INT, "
                        "mtime INT, ctime INT, ino INT, chunks BLOB)")
        self.db.execute("BEGIN")
        self.lock = threading.Lock()
        self._grew = threading.Condition(self.lock)  # rows flushed, or the scan ended
        self._pending: list = []
        self._parents: list = []
        self._results: list = []  # (chunk ids, size, seq) not yet written
        self._seq = 0
        # the scan may run beside the reads (Archiver): readers follow its rows
        self._flushed = 0
        self._scanned = False
        self._scan_error: BaseException | None = None
        self._stopping = False

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -- filling ------------------------------------------------------------------
    def append(self, item: tuple[FileEntry, Source]) -> None:
        """Add a scanned ``(entry, source)`` (``scan(out=table)``)."""
        entry, src = item
        if self._stopping:
            raise Cancelled("the archive stopped")
        self._seq += 1
        self._pending.append((self._seq, entry.path, entry.type, entry.mode, entry.mtime_ns,
                              entry.size, entry.target, entry.ctime_ns, entry.ino, src.dev,
                              src.path, is_plain(entry.path) and is_plain(entry.target)))
        if len(self._pending) >= PAGE:
            self.flush()

    def flush(self) -> None:
        """Write the scanned rows appended so far (the scanning thread's)."""
        with self.lock:
            pending, self._pending = self._pending, []
            self.db.executemany("INSERT INTO f (seq, path, type, mode, mtime, size, target, "
                                "ctime, ino, dev, src, plain) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                pending)
            self._flushed += len(pending)
            self._grew.notify_all()

    def flush_parents(self) -> None:
        """Write the parent rows added so far (``add_parent``'s thread)."""
        with self.lock:
            parents, self._parents = self._parents, []
            self.db.executemany("INSERT OR REPLACE INTO parent VALUES (?,?,?,?,?,?,?)",
                                parents)

    # -- the scan's state (it may run in a thread of its own) --------------------------
    def scan_done(self, error: BaseException | None = None) -> None:
        """The scan ended (with ``error`` if it failed): followers stop waiting."""
        with self.lock:
            self._scanned, self._scan_error = True, error
            self._grew.notify_all()

    def stop_scan(self) -> None:
        """Make a running scan stop at its next entry (the archive failed or ended)."""
        self._stopping = True

    def wait_scanned(self, check=None) -> None:
        """Until the scan has ended; its error, if it failed. ``check()`` runs every
        half second meanwhile (it may raise, to stop waiting)."""
        with self.lock:
            while not self._scanned:
                self._wait_locked(check)
            if self._scan_error is not None:
                raise self._scan_error

    def _wait_locked(self, check) -> None:
        if check is not None:
            self.lock.release()
            try:
                check()
            finally:
                self.lock.acquire()
        self._grew.wait(0.5)

    def files_under_at_least(self, under: int, count: int, check=None) -> bool:
        """Whether the scan finds ``count`` regular files under ``under`` bytes (waits
        for that many, or for the scan's end)."""
        with self.lock:
            while True:
                scanned = self._scanned
                found = self.db.execute("SELECT count(*) FROM f WHERE type = ? AND size < ? "
                                        "AND skip = 0", (FILE, under)).fetchone()[0]
                if found >= count or scanned:
                    if self._scan_error is not None:
                        raise self._scan_error
                    return found >= count
                self._wait_locked(check)

    def add_parent(self, f: FileEntry) -> None:
        """One of the parent archive's files (``Manifest.from_bytes(on_file=)``),
        for ``parent_of``; ``flush()`` after the last."""
        if f.type == FILE:
            self._parents.append((f.path, f.type, f.size, f.mtime_ns, f.ctime_ns, f.ino,
                                  b"".join(bytes.fromhex(h) for h in f.chunks)))
            if len(self._parents) >= PAGE:
                self.flush_parents()

    def parent_of(self, path: str) -> FileEntry | None:
        with self.lock:
            row = self.db.execute("SELECT type, size, mtime, ctime, ino, chunks FROM parent "
                                  "WHERE path = ?", (path,)).fetchone()
        if row is None:
            return None
        kind, size, mtime, ctime, ino, chunks = row
        return FileEntry(path, kind, 0, mtime, size, split_ids(chunks), "", ctime, ino)

    # -- reading --------------------------------------------------------------------
    def stats(self) -> tuple[int, int]:
        """(regular files, their scanned bytes)."""
        with self.lock:
            n, total = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM f "
                                       "WHERE type = ? AND skip = 0", (FILE,)).fetchone()
        return n, total

    def big_files(self, min_size: int, check=None) -> list[int]:
        """Seqs of the regular files of ``min_size`` bytes and more, largest first
        (few: at most the archive's bytes over ``min_size``), once the scan is over."""
        self.wait_scanned(check)
        with self.lock:
            return [r[0] for r in self.db.execute(
                "SELECT seq FROM f WHERE type = ? AND size >= ? ORDER BY size DESC, seq",
                (FILE, min_size))]

    def get(self, seq: int) -> tuple[FileEntry, Source]:
        with self.lock:
            row = self.db.execute(f"SELECT {_COLS} FROM f WHERE seq = ?", (seq,)).fetchone()
        return _item(row)

    def pages(self, where: str = "1", args: tuple = (), follow=None):
        """Lists of ``(seq, FileEntry, Source)`` in scan order, PAGE rows at a time
        (keyset paging: rows may be updated between pages). ``follow``: while the
        scan runs, wait for its next rows (``follow()`` runs every half second
        meanwhile; it may raise) and end with the scan, not with the rows so far."""
        for rows in self._raw_pages(_COLS, where, args, follow):
            yield [(r[0], *_item(r)) for r in rows]

    def _raw_pages(self, cols: str, where: str = "1", args: tuple = (), follow=None):
        """The rows (``seq`` first) of ``cols``, PAGE at a time in scan order."""
        last = 0
        while True:
            with self.lock:
                scanned, flushed = self._scanned, self._flushed
                rows = self.db.execute(
                    f"SELECT {cols} FROM f WHERE seq > ? AND skip = 0 AND ({where}) "
                    f"ORDER BY seq LIMIT {PAGE}", (last, *args)).fetchall()
                if not rows and follow is not None and not scanned:
                    while self._flushed == flushed and not self._scanned:
                        self._wait_locked(follow)
                    continue
            if not rows:
                if follow is not None:
                    self.wait_scanned()  # its error, if it failed
                return
            last = rows[-1][0]
            yield rows

    def pages_after_reuse(self, lo: int, hi: int, follow=None):
        """Per page of the regular files of ``lo`` to ``hi`` bytes, in scan order (as
        ``pages``): ``(reused, items)``. Those unchanged since the parent archive
        (same path, size, mtime, ctime and inode: see ``archiver.unchanged``) take
        its chunk ids in one statement; ``reused`` is ``(seq, joined chunk ids,
        size)`` of each, and ``items`` the ``(seq, FileEntry, Source)`` of the
        others. No object per unchanged file: on a second archive of 30,000 small
        files, building and comparing them was most of its time."""
        where, args = "type = ? AND size >= ? AND size < ?", (FILE, lo, hi)
        for rows in self._raw_pages("seq", where, args, follow):
            span = (rows[0][0], rows[-1][0])
            with self.lock:
                reused = self.db.execute(_REUSE, (*span, FILE, lo, hi)).fetchall()
                others = self.db.execute(
                    f"SELECT {_COLS} FROM f WHERE seq BETWEEN ? AND ? AND skip = 0 AND "
                    f"chunks IS NULL AND ({where}) ORDER BY seq", (*span, *args)).fetchall()
            yield reused, [(r[0], *_item(r)) for r in others]

    def unreuse(self, seqs: list[int]) -> list:
        """Undo ``pages_after_reuse`` for these files (their chunks are not all
        stored): their ``(seq, FileEntry, Source)``, to be read."""
        with self.lock:
            self.db.executemany("UPDATE f SET chunks = NULL WHERE seq = ?",
                                [(s,) for s in seqs])
        return [(seq, *self.get(seq)) for seq in seqs]

    def small_files(self, max_size: int):
        for page in self.pages("type = ? AND size < ?", (FILE, max_size)):
            yield from page

    def items(self) -> list[tuple[FileEntry, Source]]:
        """Every entry at once (for ``after_scan`` hooks; tests)."""
        return [(e, s) for page in self.pages() for _seq, e, s in page]

    # -- results ----------------------------------------------------------------------
    def set_chunks(self, seq: int, ids: list[bytes], size: int) -> None:
        """Record a file's chunk ids and read size (written PAGE at a time: nothing
        reads them before ``flush_results``, which the manifest's readers call)."""
        self.set_many([(b"".join(ids), size, seq)])

    def set_many(self, results: list) -> None:
        """``set_chunks`` of many files: ``(joined chunk ids, size, seq)`` each."""
        with self.lock:
            self._results += results
            if len(self._results) >= PAGE:
                self._flush_results_locked()

    def _flush_results_locked(self) -> None:
        self.db.executemany("UPDATE f SET chunks = ?, size = ? WHERE seq = ?", self._results)
        self._results = []

    def flush_results(self) -> None:
        with self.lock:
            self._flush_results_locked()

    def drop(self, paths) -> None:
        """Leave these entries out of the manifest (unreadable files)."""
        with self.lock:
            self._flush_results_locked()
            self.db.executemany("UPDATE f SET skip = 1 WHERE path = ?", [(p,) for p in paths])

    def manifest_files(self) -> ManifestFiles:
        self.flush_results()
        return ManifestFiles(self)


# the scanned files of a span of seqs (and a size range) that are unchanged since the
# parent archive take its chunk ids (the parent table holds its regular files only)
_REUSE = (
    "UPDATE f SET chunks = p.chunks FROM parent AS p "
    "WHERE f.seq BETWEEN ? AND ? AND f.skip = 0 AND f.chunks IS NULL AND f.type = ? "
    "AND f.size >= ? AND f.size < ? AND p.path = f.path AND p.size = f.size "
    "AND p.mtime = f.mtime AND p.ctime = f.ctime AND p.ctime != 0 AND p.ino = f.ino "
    "RETURNING seq, chunks, size")


class ManifestFiles:
    """The manifest's files, read from the table in batches (``zjson.Rows``)."""

    def __init__(self, table: FileTable):
        self.table = table

    def __iter__(self):
        for page in self.table.pages():
            for _seq, entry, _src in page:
                yield entry

    def batches(self):
        for page in self.table.pages():
            yield [e for _seq, e, _src in page]

    def rows(self) -> ManifestRows:
        """The same files as manifest rows, read straight from the table."""
        return ManifestRows(self.table)

    def __len__(self) -> int:
        with self.table.lock:
            return self.table.db.execute("SELECT count(*) FROM f WHERE skip = 0").fetchone()[0]


def is_plain(text: str | None) -> bool:
    """Printable ASCII without '"' or '\\' (or no text): its JSON is itself in quotes,
    from sqlite's json_array as from Python's json, which escapes everything else its
    own way. Decided as the row is added (four C string calls): the same test in SQL
    (a GLOB over a class of 34 characters) was half of the manifest's time."""
    return not text or (text.isascii() and text.isprintable() and '"' not in text
                        and "\\" not in text)


# A row's JSON as ``json.dumps(row, separators=(",", ":"))`` writes it, for rows of at
# most one chunk and plain strings (NULL for the others, which Python writes)
_ROW_JSON = (
    "CASE WHEN (chunks IS NULL OR length(chunks) IN (0, 32)) AND plain "
    "THEN json_array(path, type, mode, mtime, size, "
    "json(CASE WHEN length(chunks) = 32 THEN '[\"' || lower(hex(chunks)) || '\"]' "
    "ELSE '[]' END), target, ctime, ino) END")


class ManifestRows:
    """The manifest's files as rows in ``manifest.ROW_FIELDS`` order, a page at a
    time (``zjson.Rows``): no FileEntry or Source per file. Writing the manifest of
    30,000 small files took a fifth of their archive through FileEntry objects."""

    def __init__(self, table: FileTable):
        self.table = table

    def batches(self):
        for rows in self.table._raw_pages(_ROW_COLS):
            yield [_row(r) for r in rows]

    def json_texts(self, enc):
        """The rows' JSON, a page at a time without brackets: sqlite writes most rows
        (files of one chunk with plain names); ``enc`` the others. The same text as
        ``enc`` over ``batches()`` (a third of the manifest's time went to
        building and encoding those lists)."""
        table = self.table
        for rows in table._raw_pages(f"seq, {_ROW_JSON}"):
            texts = [text for _seq, text in rows]
            others = [seq for seq, text in rows if text is None]
            if others:
                with table.lock:
                    found = {r[0]: _row(r) for r in table.db.execute(
                        f"SELECT {_ROW_COLS} FROM f WHERE seq IN "
                        f"({','.join('?' * len(others))})", others)}
                texts = [enc.encode(found[seq]) if text is None else text
                         for seq, text in rows]
            yield ",".join(texts)

    def __len__(self) -> int:
        return len(ManifestFiles(self.table))


def _row(r) -> list:
    """A manifest row from ``_ROW_COLS``."""
    _seq, path, kind, mode, mtime, size, chunks, target, ctime, ino = r
    return [path, kind, mode, mtime, size, split_ids(chunks), target, ctime, ino]


def split_ids(blob: bytes | None) -> list[str]:
    if not blob:
        return []
    if len(blob) == 32:  # most files are one chunk
        return [blob.hex()]
    return [blob[i:i + 32].hex() for i in range(0, len(blob), 32)]


def _item(row) -> tuple[FileEntry, Source]:
    _seq, path, kind, mode, mtime, size, target, ctime, ino, dev, src, chunks = row
    entry = FileEntry(path, kind, mode, mtime, size, split_ids(chunks), target, ctime, ino)
    return entry, Source(src, dev, ino)
