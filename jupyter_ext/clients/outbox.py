"""A durable outbox: calls that must reach a peer eventually, kept in a SQLite file.

Archive registrations (user server -> lens service) and server metering events
(hub -> lens service) go through it: ``put`` stores the call with its
idempotency key first, then delivers it at once, and deletes each call the peer
accepted. Calls of one *group* (a key prefix: one server's metering events)
reach the peer in the order they were kept; calls of different groups do not
wait for each other, so a class starting 50 servers at once sends 50 events
side by side rather than one after the other. A peer that is down, slow or
failing (5xx) leaves the call for ``flush``, which delivers what is pending in
order (stopping at the first transient failure) at start and on a timer
(``run``). A call the peer refuses for good (4xx) is
dropped with a warning: retrying would never succeed. The peer sees the
idempotency key (``Idempotency-Key``) and acts at most once per key, so a
call delivered but not acknowledged (the answer was lost) is never applied twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .base import PeerClient, PeerError

log = logging.getLogger("lens.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    method: str
    path: str
    body: dict
    attempts: int
    last_error: str


class Outbox:
    """``Outbox(path)``: one SQLite file (created with its directory, mode 0600)."""

    def __init__(self, db_path: str | Path):
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._flushing = threading.Lock()  # one flush at a time per process (threads and loop)
        self._in_flight: dict[str, str] = {}  # key -> group of calls being delivered by send
        self._in_flight_lock = threading.Lock()
        with self._connect() as conn:
            conn.execute(SCHEMA)
        self.path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def put(self, method: str, path: str, body: dict, key: str) -> bool:
        """Keep a call; False when one with this key is already waiting."""
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO outbox (key, method, path, body, created) VALUES (?, ?, ?, ?, ?)",
                (key, method.upper(), path, json.dumps(body), time.time()))
            return cur.rowcount == 1

    def _keep(self, method: str, path: str, body: dict, key: str, group: str) -> bool:
        """Keep a call; True when an earlier call of ``group`` is still waiting (this one
        must then go behind it)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO outbox (key, method, path, body, created) VALUES (?, ?, ?, ?, ?)",
                (key, method.upper(), path, json.dumps(body), time.time()))
            row = conn.execute("SELECT id FROM outbox WHERE key = ?", (key,)).fetchone()
            earlier = conn.execute(
                "SELECT 1 FROM outbox WHERE id < ? AND substr(key, 1, ?) = ? LIMIT 1",
                (row[0], len(group), group)).fetchone()
            return earlier is not None

    def _entry(self, key: str) -> Entry | None:
        with self._connect() as conn:
            r = conn.execute("SELECT id, key, method, path, body, attempts, last_error FROM outbox "
                             "WHERE key = ?", (key,)).fetchone()
        return None if r is None else Entry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])

    def _group_in_flight(self, key: str) -> bool:
        with self._in_flight_lock:
            return any(key.startswith(group) for group in self._in_flight.values())

    def pending(self) -> list[Entry]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, key, method, path, body, attempts, last_error FROM outbox ORDER BY id").fetchall()
        return [Entry(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def _done(self, entry_id: int) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ?", (entry_id,))

    def _failed(self, entry_id: int, error: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                         (error[:500], entry_id))

    async def flush(self, client: PeerClient, wait: bool = False) -> int:
        """Deliver pending calls in order; stop at the first transient failure.
        Returns how many the peer took. Another flush under way: returns 0 at once, or
        with ``wait``, waits for it and then flushes (its snapshot may predate our call)."""
        while not self._flushing.acquire(blocking=False):
            if not wait:
                return 0
            await asyncio.sleep(0.02)
        delivered = 0
        try:
            for entry in await asyncio.to_thread(self.pending):
                if self._group_in_flight(entry.key):  # send is delivering its group now
                    continue
                if not await self._deliver(client, entry):
                    break
                delivered += 1
        finally:
            self._flushing.release()
        return delivered

    async def send(self, client: PeerClient, method: str, path: str, body: dict, key: str,
                   group: str | None = None) -> bool:
        """Keep the call, then deliver it; True when nothing is left waiting for this key.

        ``group`` (a key prefix, default the key itself) orders calls: with an earlier call
        of the group still waiting, this one is delivered behind it by a flush."""
        group = group or key
        behind = await asyncio.to_thread(self._keep, method, path, body, key, group)
        if behind:
            # its predecessor is being delivered now, maybe from another thread's loop
            # (send_sync), which an asyncio.Event could not signal: poll
            while self._group_in_flight(group):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await self.flush(client, wait=True)
            return await asyncio.to_thread(self._entry, key) is None
        with self._in_flight_lock:
            if key in self._in_flight:  # the same call is already on its way
                return False
            self._in_flight[key] = group
        try:
            entry = await asyncio.to_thread(self._entry, key)
            if entry is None:  # a flush delivered it meanwhile
                return True
            return await self._deliver(client, entry)
        finally:
            with self._in_flight_lock:
                self._in_flight.pop(key, None)

    async def _deliver(self, client: PeerClient, entry: Entry) -> bool:
        """One call; True when it is settled (taken, or refused for good)."""
        try:
            await client.call(entry.method, entry.path, entry.body, idempotency_key=entry.key)
        except PeerError as exc:
            if exc.transient:
                await asyncio.to_thread(self._failed, entry.id, str(exc))
                log.info("outbox: %s kept for a retry (%s)", entry.key, exc)
                return False
            log.warning("outbox: %s dropped, refused by %s: %s", entry.key, exc.peer, exc)
        await asyncio.to_thread(self._done, entry.id)
        return True

    def send_sync(self, client: PeerClient, method: str, path: str, body: dict, key: str) -> bool:
        """``send`` from a thread without an event loop (e.g. an archive task)."""
        return asyncio.run(self.send(client, method, path, body, key))

    async def run(self, client: PeerClient, interval: float) -> None:
        """Flush now and then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.flush(client)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken flush must not end the timer
                log.exception("outbox: flush failed")
            await asyncio.sleep(interval)


_flushers: dict[str, asyncio.Task] = {}


def ensure_flusher(outbox: Outbox, client: PeerClient, interval: float) -> asyncio.Task | None:
    """Start ``outbox.run`` once per file in this process's running loop (None without one)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    key = str(outbox.path)
    task = _flushers.get(key)
    if task is None or task.done() or task.get_loop() is not loop:
        task = _flushers[key] = loop.create_task(outbox.run(client, interval))
    return task
