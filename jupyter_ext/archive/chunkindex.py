"""Where each chunk is stored (pack, offset, length, raw length), on local disk.

A repository's chunk index grows with everything it holds: as a dict it cost
about 160 bytes a chunk, so memory grew with the data. Here it is a temp sqlite
table (unlinked as soon as it is opened), and memory stays at sqlite's page
cache however many chunks there are.
"""

from __future__ import annotations

import itertools
import operator
import os
import sqlite3
import tempfile
import threading


def temp_db(prefix: str, directory: str | None = None) -> sqlite3.Connection:
    """A private sqlite database in a temp file that is already unlinked (a killed
    process leaves nothing behind); autocommit, no journal, no fsync."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".db", dir=directory)
    os.close(fd)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    finally:
        os.unlink(path)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1024",
                   "temp_store=FILE"):
        db.execute(f"PRAGMA {pragma}")
    return db


MIN_BLOOM_BITS = 20      # log2 of the smallest filter's bits (128 KiB)
MAX_BLOOM_BITS = 32      # four slices of 32 bits: all of the id's first 16 bytes
BITS_PER_CHUNK = 16      # about 0.25 % false positives with the four slices
MANY = 500  # ids per query of get_many
ADD_PAGE = 5000  # rows per insert of add


_first = operator.itemgetter(0)


def bloom_bits(chunks: int) -> int:
    """log2 of the filter size for ``chunks`` ids (at least ``BITS_PER_CHUNK`` each)."""
    need = max(1, chunks * BITS_PER_CHUNK - 1).bit_length()
    return min(MAX_BLOOM_BITS, max(MIN_BLOOM_BITS, need))


class ChunkIndex:
    """chunk id (32 bytes) -> (pack number, offset, length, raw length). Thread-safe.

    A Bloom filter in memory answers most lookups of new chunks (the common case
    while archiving new data) without a query; chunk ids are BLAKE3 hashes, so
    their own bits serve as the filter's hash functions. The filter is sized to the
    index (``expected`` ids, or the smallest) and rebuilt four times larger from
    the table when it holds more than its share: memory follows the repository,
    and a restore that says what it loads never rebuilds. ``filtered=False``: no
    filter, for a restore, which looks up only chunks its manifest names (all
    there: a filter would be built and consulted for nothing)."""

    def __init__(self, directory: str | None = None, expected: int = 0,
                 filtered: bool = True):
        self.db = temp_db("lens-chunks-", directory)
        self.db.execute("CREATE TABLE c (id BLOB PRIMARY KEY, pack INT, off INT, len INT, "
                        "raw INT) WITHOUT ROWID")
        self.lock = threading.Lock()
        self.rows = 0
        self._filter = _empty_filter(bloom_bits(expected)) if filtered else None

    def _maybe(self, cid: bytes) -> bool:
        if self._filter is None:
            return True
        bloom, width = self._filter  # one read: a rebuild swaps both at once
        for b in _bits(cid, width):
            if not bloom[b >> 3] & (1 << (b & 7)):
                return False
        return True

    def add(self, rows) -> None:
        """``rows``: (id, pack number, offset, length, raw length); the first wins.
        Taken ADD_PAGE at a time: a pack of small files lists ~40,000 chunks."""
        rows = iter(rows)
        while page := list(itertools.islice(rows, ADD_PAGE)):
            self._add_page(page)

    def _add_page(self, rows: list) -> None:
        # in id order: each B-tree page is visited once, not once per random id (30 %
        # faster into a table of 200,000); stable, so the first of an id still wins
        ordered = sorted(rows, key=_first)
        with self.lock:
            self.db.execute("BEGIN")
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO c VALUES (?,?,?,?,?)", ordered)
            self.db.execute("COMMIT")
            self.rows += self.db.total_changes - before
            if self._filter is None:
                return
            bloom, width = self._filter
            if self.rows * BITS_PER_CHUNK > 1 << width and width < MAX_BLOOM_BITS:
                self._filter = self._rebuilt(bloom_bits(4 * self.rows))
                return
            for row in rows:  # after the insert: a set bit always has its row
                for b in _bits(row[0], width):
                    bloom[b >> 3] |= 1 << (b & 7)

    def _rebuilt(self, width: int) -> tuple:
        """A filter of ``2**width`` bits holding every id of the table (under the lock)."""
        bloom, _ = filt = _empty_filter(width)
        for (cid,) in self.db.execute("SELECT id FROM c"):
            for b in _bits(cid, width):
                bloom[b >> 3] |= 1 << (b & 7)
        return filt

    def get(self, cid: bytes) -> tuple | None:
        if not self._maybe(cid):
            return None
        with self.lock:
            return self.db.execute("SELECT pack, off, len, raw FROM c WHERE id = ?",
                                   (cid,)).fetchone()

    def get_many(self, cids) -> dict:
        """{id: row} for the ids found, in one query per MANY ids (a query per id cost
        ~17 us in Python, most of a restore of many small files)."""
        want = list(set(cids) if self._filter is None else {c for c in cids if self._maybe(c)})
        out = {}
        for i in range(0, len(want), MANY):
            part = want[i:i + MANY]
            marks = ",".join("?" * len(part))
            with self.lock:
                rows = self.db.execute(f"SELECT id, pack, off, len, raw FROM c WHERE id IN "
                                       f"({marks})", part).fetchall()
            for cid, *loc in rows:
                out[cid] = tuple(loc)
        return out

    def missing(self, cids) -> set:
        """The ids of ``cids`` that are not in the index: one count per MANY ids (all
        there is the common case: an unchanged file's chunks), the ids themselves
        only for a part that lacks some."""
        want = list(set(cids))
        out = set()
        for i in range(0, len(want), MANY):
            part = want[i:i + MANY]
            marks = ",".join("?" * len(part))
            with self.lock:
                n = self.db.execute(f"SELECT count(*) FROM c WHERE id IN ({marks})",
                                    part).fetchone()[0]
                if n == len(part):
                    continue
                found = {r[0] for r in self.db.execute(
                    f"SELECT id FROM c WHERE id IN ({marks})", part)}
            out.update(c for c in part if c not in found)
        return out

    def drop_pack(self, pack: int) -> None:
        """Forget the rows of pack number ``pack`` (its index proved bad). Their filter
        bits stay: a false positive costs one query."""
        with self.lock:
            before = self.db.total_changes
            self.db.execute("DELETE FROM c WHERE pack = ?", (pack,))
            self.rows -= self.db.total_changes - before

    def __len__(self) -> int:
        with self.lock:
            return self.db.execute("SELECT count(*) FROM c").fetchone()[0]

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _empty_filter(width: int) -> tuple:
    return bytearray(1 << (width - 3)), width


def _bits(cid: bytes, width: int) -> tuple:
    """The id's four filter positions: ``width``-bit slices of its first 16 bytes (a
    tuple, not a generator: this runs once per chunk looked up or added)."""
    h = int.from_bytes(cid[:16], "little")
    m = (1 << width) - 1
    return h & m, (h >> width) & m, (h >> 2 * width) & m, (h >> 3 * width) & m
