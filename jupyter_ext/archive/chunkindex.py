"""Where each chunk is stored (pack, offset, length, raw length), on local disk.

A repository's chunk index grows with everything it holds: as a dict it cost
about 160 bytes a chunk, so memory grew with the data. Here it is a temp sqlite
table (unlinked as soon as it is opened), and memory stays at sqlite's page
cache however many chunks there are.
"""

from __future__ import annotations

import itertools
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


BLOOM_BITS = 25          # a 4 MiB filter: under 1 % false positives up to ~3M chunks
BLOOM_HASHES = 4         # the four slices _bits returns
MANY = 500  # ids per query of get_many
ADD_PAGE = 5000  # rows per insert of add
_BLOOM_MASK = (1 << BLOOM_BITS) - 1


class ChunkIndex:
    """chunk id (32 bytes) -> (pack number, offset, length, raw length). Thread-safe.

    A fixed-size Bloom filter in memory answers most lookups of new chunks (the
    common case while archiving new data) without a query; chunk ids are BLAKE3
    hashes, so their own bits serve as the filter's hash functions."""

    def __init__(self, directory: str | None = None):
        self.db = temp_db("lens-chunks-", directory)
        self.db.execute("CREATE TABLE c (id BLOB PRIMARY KEY, pack INT, off INT, len INT, "
                        "raw INT) WITHOUT ROWID")
        self.lock = threading.Lock()
        self.bloom = bytearray(1 << (BLOOM_BITS - 3))

    @staticmethod
    def _bits(cid: bytes) -> tuple:
        """The id's four filter positions: 25-bit slices of its first 16 bytes (a
        tuple, not a generator: this runs once per chunk looked up or added)."""
        h = int.from_bytes(cid[:16], "little")
        m = _BLOOM_MASK
        return h & m, (h >> BLOOM_BITS) & m, (h >> 2 * BLOOM_BITS) & m, (h >> 3 * BLOOM_BITS) & m

    def _maybe(self, cid: bytes) -> bool:
        bloom = self.bloom
        for b in self._bits(cid):
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
        with self.lock:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO c VALUES (?,?,?,?,?)", rows)
            self.db.execute("COMMIT")
            bloom = self.bloom
            for row in rows:  # after the insert: a set bit always has its row
                for b in self._bits(row[0]):
                    bloom[b >> 3] |= 1 << (b & 7)

    def get(self, cid: bytes) -> tuple | None:
        if not self._maybe(cid):
            return None
        with self.lock:
            return self.db.execute("SELECT pack, off, len, raw FROM c WHERE id = ?",
                                   (cid,)).fetchone()

    def get_many(self, cids) -> dict:
        """{id: row} for the ids found, in one query per MANY ids (a query per id cost
        ~17 us in Python, most of a restore of many small files)."""
        want = list({c for c in cids if self._maybe(c)})
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

    def drop_pack(self, pack: int) -> None:
        """Forget the rows of pack number ``pack`` (its index proved bad). Their filter
        bits stay: a false positive costs one query."""
        with self.lock:
            self.db.execute("DELETE FROM c WHERE pack = ?", (pack,))

    def __len__(self) -> int:
        with self.lock:
            return self.db.execute("SELECT count(*) FROM c").fetchone()[0]

    def close(self) -> None:
        with self.lock:
            self.db.close()
