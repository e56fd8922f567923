"""Where each chunk is stored (pack, offset, length, raw length), on local disk.

A repository's chunk index grows with everything it holds: as a dict it cost
about 160 bytes a chunk, so memory grew with the data. Here it is a temp sqlite
table (unlinked as soon as it is opened), and memory stays at sqlite's page
cache however many chunks there are.
"""

from __future__ import annotations

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


class ChunkIndex:
    """chunk id (32 bytes) -> (pack number, offset, length, raw length). Thread-safe."""

    def __init__(self, directory: str | None = None):
        self.db = temp_db("lens-chunks-", directory)
        self.db.execute("CREATE TABLE c (id BLOB PRIMARY KEY, pack INT, off INT, len INT, "
                        "raw INT) WITHOUT ROWID")
        self.lock = threading.Lock()

    def add(self, rows) -> None:
        """``rows``: (id, pack number, offset, length, raw length); the first wins."""
        with self.lock:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO c VALUES (?,?,?,?,?)", rows)
            self.db.execute("COMMIT")

    def get(self, cid: bytes) -> tuple | None:
        with self.lock:
            return self.db.execute("SELECT pack, off, len, raw FROM c WHERE id = ?",
                                   (cid,)).fetchone()

    def __len__(self) -> int:
        with self.lock:
            return self.db.execute("SELECT count(*) FROM c").fetchone()[0]

    def close(self) -> None:
        with self.lock:
            self.db.close()
