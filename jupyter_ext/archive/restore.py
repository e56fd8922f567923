"""Plan and run restores: exact packs first, thaw cold packs, verify, write atomically.

``plan_restore`` needs only hot metadata (manifest + pack indexes). ``Restorer``
persists its state in the repository (``restores/<id>``) so a restart resumes:
thaw requests are not repeated and finished files are skipped.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import queue
import re
import resource
import secrets
import stat
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import blake3

from ..constants import COLD_CLASSES, DEFAULT_TIER
from .blobs import decode
from .errors import ArchiveError, ConfigError, Exists, IntegrityError, NotFound, UnsafePath
from .framing import read_message
from .helpers import HelperPool
from .manifest import DIR, FILE, SYMLINK, ArchiveEntry, FileEntry, check_relpath
from .manifest_reader import manifest_pages
from .pricing import check_tier, retrieval_estimates
from .progress import Reporter
from .repository import Location, Repository
from .restoretable import Bits, PlannedEntry, RestoreTable, Selection
from .safefs import SPECIAL_BITS, DirWalker, current_umask, safe_mode
from .stores.local import LocalStore
from .writer_process import CREATE_FLAGS, kept, write_content
from .writer_process import OK as W_OK
from .writer_process import RETRY as W_RETRY

MAX_RANGE = 4 * 1024 * 1024    # bytes per ranged read of an object store (fewer requests)
LOCAL_RANGE = 1024 * 1024      # ... of a local repository: reads are cheap, memory is not
SMALL_FILE = 1024 * 1024    # files up to this size are restored in batches
MAX_GAP = 1024 * 1024       # a batch reads over at most this much unneeded pack data
MAX_BATCH_FILES = 256
WRITERS_FROM = 1000         # small files from which writer processes pay for starting
TMP_MARK = ".lens-tmp-"
TMP_RE = re.compile(r"^\..+\.lens-tmp-[0-9a-f]{8}$")


@dataclass
class RestorePlan:
    archive: ArchiveEntry
    table: RestoreTable  # the entries to restore, on local disk
    paths: list
    packs: dict = field(default_factory=dict)   # pack -> {"size","class","needed"}
    bytes_to_read: int = 0
    raw_bytes: int = 0
    file_count: int = 0
    estimates: list = field(default_factory=list)

    @property
    def cold_packs(self) -> list[str]:
        return sorted(p for p, i in self.packs.items() if i["class"] in COLD_CLASSES)

    @property
    def thaw_bytes(self) -> int:
        return sum(self.packs[p]["size"] for p in self.cold_packs)

    def as_dict(self) -> dict:
        return {"archive": self.archive.id, "name": self.archive.name,
                "files": self.file_count,
                "raw_bytes": self.raw_bytes, "packs": len(self.packs),
                "bytes_to_read": self.bytes_to_read, "cold_packs": len(self.cold_packs),
                "thaw_bytes": self.thaw_bytes,
                "estimates": [e.as_dict() for e in self.estimates]}


def plan_restore(repo: Repository, ref: str, paths: list[str] | None = None,
                 prices=None) -> RestorePlan:
    """The entries of ``paths`` (exact paths, folder prefixes or globs, and the
    folders above them; everything when empty), streamed from the manifest into a
    table on local disk, with the packs they need and what thawing those costs."""
    entry = repo.resolve(ref)
    table = RestoreTable()
    chosen = Selection(paths)
    plan = RestorePlan(entry, table, sorted(paths or []))
    # a large manifest is read and checked by a helper process meanwhile
    with manifest_pages(repo, entry) as pages:
        repo.load_index(filtered=False)  # every chunk looked up is there
        for rows in pages:
            place_rows(repo, plan, chosen, rows)
    table.keep(chosen)
    table.ready()
    by_class: dict[str, list[int]] = {}
    for info in plan.packs.values():
        by_class.setdefault(info["class"], []).append(info["size"])
    plan.estimates = retrieval_estimates(by_class, prices)
    return plan


def place_rows(repo: Repository, plan: RestorePlan, chosen: Selection, rows: list) -> None:
    """Locate the chunks of a page of checked manifest rows (one batched lookup) and
    add the page to the table, each small file with its pack range: no second pass
    over the table."""
    taken = [chosen.takes(row[0]) for row in rows]
    found = repo.locate_many(cid for row, take in zip(rows, taken, strict=True)
                             if take and row[1] == FILE for cid in row[5])
    add = plan.table.add_row
    for row, take in zip(rows, taken, strict=True):
        add(row, take, plan_file(repo, plan, row, found) if take and row[1] == FILE else None)


def plan_file(repo: Repository, plan: RestorePlan, row: tuple, found: dict) -> tuple | None:
    """Count one file's chunks into the plan (``row``: a manifest row of
    ``checked_pages``; ``found``: its chunks' locations). A small file in one pack
    gets its ``(pack, lo, hi)`` there: it is restored in a batch."""
    path, size, ids = row[0], row[4], row[5]
    plan.raw_bytes += size
    plan.file_count += 1
    packs, lo, hi = set(), None, 0
    for cid in ids:
        loc = found.get(cid)
        if loc is None:
            raise IntegrityError(f"{path}: chunk {cid.hex()[:16]} is missing from the "
                                 "repository")
        info = plan.packs.get(loc.pack)
        if info is None:
            pi = repo.packs[loc.pack]
            info = plan.packs[loc.pack] = {"size": pi.size, "class": pi.storage_class,
                                           "needed": 0}
        info["needed"] += loc.length
        plan.bytes_to_read += loc.length
        packs.add(loc.pack)
        lo = loc.offset if lo is None else min(lo, loc.offset)
        hi = max(hi, loc.offset + loc.length)
    if len(packs) == 1 and size <= SMALL_FILE:
        return packs.pop(), lo, hi
    return None


def walker_fds(walkers: int) -> int:
    """Folder fds each batch thread may keep open, within the process's fd limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(8, min(512, (soft - 128) // (walkers + 1)))


def restore_id(archive_id: str, paths: list, target: str) -> str:
    key = json.dumps([archive_id, sorted(paths), os.path.abspath(target)])
    return blake3.blake3(key.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class InFlight:
    """Bytes of pack data read or decoded and not yet written, shared by the batches
    of small files and the big file's read-ahead: a restore's peak memory is this
    limit, not the sum of every job's worst case at once (those coincided at random,
    so the peak grew with the length of the restore). A job bigger than the limit
    still runs, alone."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._cond = threading.Condition()

    def take(self, n: int, wait: bool = True) -> bool:
        with self._cond:
            while self.used and self.used + n > self.limit:
                if not wait:
                    return False
                self._cond.wait()
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class Restorer:
    def __init__(self, repo: Repository, plan: RestorePlan, target: str, *, tier: str = DEFAULT_TIER,
                 overwrite: bool = False, days: int = 7, poll_interval: float = 60.0,
                 timeout: float | None = None, workers: int = 4,
                 reporter: Reporter | None = None, max_range: int = 0,
                 writer_processes: int = 0, writers_from: int = WRITERS_FROM):
        """``max_range``: the most bytes read (and decoded) at once per job; by
        default LOCAL_RANGE for a repository on local disk, MAX_RANGE for an object
        store. Reads in flight (at most ``in_flight``: ``workers + 2`` x ``max_range``,
        read and decoded) are most of a restore's memory. ``writer_processes``:
        processes that write the new small files of a restore from a local
        repository with at least ``writers_from`` of them (0: threads write them)."""
        if writer_processes < 0 or writers_from < 0:
            raise ConfigError("restore_processes, restore_processes_from: must be >= 0")
        self.writer_processes, self.writers_from = writer_processes, writers_from
        self.repo, self.plan = repo, plan
        if max_range < 0:
            raise ConfigError(f"restore_range: {max_range} is negative (0: the default)")
        self.max_range = max_range or (LOCAL_RANGE if repo.store.spools else MAX_RANGE)
        self.in_flight = InFlight((workers + 2) * self.max_range)
        self.target = os.path.abspath(os.path.expanduser(target))
        self.tier = check_tier(tier)
        self.overwrite, self.days = overwrite, days
        self.poll_interval, self.timeout, self.workers = poll_interval, timeout, workers
        self.rep = reporter or Reporter()
        self.umask = current_umask()
        self.id = restore_id(plan.archive.id, plan.paths, self.target)
        state = repo.load_state(self.id)
        if state and state.get("status") == "done":
            state = None  # a finished restore is not resumed; a new one starts
        self.state = state or {
            "id": self.id, "archive": plan.archive.id, "name": plan.archive.name,
            "paths": plan.paths, "target": self.target, "tier": tier, "status": "planned",
            "thaw_requested": {}, "created": _now(), "error": ""}
        self._last_save = 0.0
        self._save_took = 0.0
        self._lock = threading.Lock()
        # big files and writer processes' small files are recorded from two threads
        self._record_lock = threading.RLock()
        self._halt = threading.Event()  # one half of the restore failed: the other stops
        table = plan.table
        # one bit per entry (by seq): finished; and absent when this restore began
        # (created under its own name; on resume, a regular file there is this
        # restore's partial file)
        self.done = Bits.decode(self.state.get("done_bits"), table.size)
        self.new = Bits.decode(self.state.get("new_bits"), table.size)
        # folders this restore created (they get the archive's modes at the end)
        self.created = Bits.decode(self.state.get("created_bits"), table.size)
        self._fresh = False  # the target did not exist at the preflight
        self._creating = None  # (path, seq) of the archive folder being made
        if {"done", "new_files", "created_dirs"} & set(self.state):
            self._from_path_lists(self.state.pop("done", []), self.state.pop("new_files", []),
                                  self.state.pop("created_dirs", []))

    def _from_path_lists(self, done: list, new: list, created: list) -> None:
        """A state saved by a lens that listed paths: its lists become bits."""
        done_paths, new_paths, created_paths = set(done), set(new), set(created)
        for f in self.plan.table.entries():
            if f.path in done_paths:
                self.done.add(f.seq)
            if f.path in new_paths:
                self.new.add(f.seq)
            if f.path in created_paths:
                self.created.add(f.seq)

    # -- state ---------------------------------------------------------------
    def save(self, force: bool = True) -> None:
        """Persist the state; unforced saves at most every 2 s, and never more than
        5 % of the time (a resumed restore re-checks files written but not yet
        recorded)."""
        with self._record_lock:  # reentrant: ``_record`` saves under it
            if force or time.monotonic() - self._last_save > max(2.0, 20 * self._save_took):
                started = time.monotonic()
                self.state["updated"] = _now()
                self.state["done_bits"] = self.done.encode()
                self.state["new_bits"] = self.new.encode()
                with self._lock:
                    self.state["created_bits"] = self.created.encode()
                self.state["done_count"] = self.done.count
                self.repo.save_state(self.id, self.state)
                self._last_save = time.monotonic()
                self._save_took = self._last_save - started

    # -- paths ---------------------------------------------------------------
    # Everything below the target is reached through DirWalker: folder fds opened
    # component by component with O_NOFOLLOW, so no link (from the archive or
    # already in the target) is ever followed by a write, mkdir or chmod.
    @staticmethod
    def _parts(rel: str) -> list[str]:
        return check_relpath(rel).split("/")

    def _existing_link(self, walker: DirWalker | None):
        def link_of(path: str) -> str | None:
            if walker is None:
                return None
            st = walker.lstat(path.split("/"))
            if st is not None and stat.S_ISLNK(st.st_mode):
                return walker.readlink(path.split("/"))
            return None
        return link_of

    @property
    def resuming(self) -> bool:
        return self.state["status"] in ("thawing", "downloading", "failed")

    def _already_restored(self, f: FileEntry, st: os.stat_result, w: DirWalker) -> bool:
        """On resume: a file written before a crash but not yet recorded as done
        (same type, size and ns mtime, which the restore sets before its rename)."""
        if f.type == SYMLINK:
            return stat.S_ISLNK(st.st_mode) and w.readlink(self._parts(f.path)) == f.target
        return (f.type == FILE and stat.S_ISREG(st.st_mode) and st.st_size == f.size
                and st.st_mtime_ns == f.mtime_ns)

    def _sweep_temp(self, w: DirWalker) -> None:
        """Remove our own temp files left in the target by a killed restore."""
        for d in self.plan.table.folders_of_entries():
            try:
                fd = w.open(d.split("/") if d else [])
                names = os.listdir(fd) if fd is not None else []
            except (OSError, UnsafePath):
                continue
            for name in names:
                if TMP_RE.match(name):
                    try:
                        os.unlink(name, dir_fd=fd)
                    except OSError:
                        pass

    def preflight(self) -> None:
        """Refuse unsafe paths and existing files before anything is written (each
        entry's path and link were checked as the plan read it: ``validate``)."""
        table = self.plan.table
        if not os.path.isdir(self.target):
            if os.path.lexists(self.target):
                raise Exists(f"restore target {self.target!r} exists and is not a folder")
            table.check_tree()
            self._fresh = True
            if not self.resuming:
                self._mark_new(seq for seq, _size in table.sizes(FILE))
            return
        with DirWalker(self.target) as w:
            table.check_tree(self._existing_link(w))
            self._preflight_target(w)

    def _preflight_target(self, w: DirWalker) -> None:
        if self.resuming:
            self._sweep_temp(w)
        done = self.done
        conflicts, n_conflicts = [], 0
        new = Bits(self.plan.table.size)
        for f in self.plan.table.entries():
            parts = self._parts(f.path)
            st = w.lstat(parts)  # walks the parents: UnsafePath if one is a link
            if st is None:
                if f.type == FILE and not self.resuming:
                    new.add(f.seq)
                continue
            if f.type == DIR:
                if stat.S_ISLNK(st.st_mode):
                    raise UnsafePath(f"{f.path!r} in the restore target is a symlink; "
                                     "refusing to write through it")
                if not stat.S_ISDIR(st.st_mode):
                    raise Exists(f"{f.path}: a file is in the way of a folder")
            elif f.seq not in done:
                if self.resuming and self._already_restored(f, st, w):
                    done.add(f.seq)
                elif (self.resuming and f.seq in self.new
                      and stat.S_ISREG(st.st_mode)):
                    pass  # this restore's partial file, from before a kill
                elif not self.overwrite:
                    if len(conflicts) < 5:
                        conflicts.append(f.path)
                    n_conflicts += 1
                elif stat.S_ISDIR(st.st_mode):
                    raise Exists(f"{f.path}: a directory is in the way")
        if conflicts:
            more = f" (+{n_conflicts - 5} more)" if n_conflicts > 5 else ""
            raise Exists(f"{n_conflicts} file(s) exist, e.g. {', '.join(conflicts)}"
                         f"{more}; pass overwrite=True (--overwrite) to replace them")
        if not self.resuming:
            self.new = new

    def _mark_new(self, seqs) -> None:
        self.new = Bits(self.plan.table.size)
        for seq in seqs:
            self.new.add(seq)

    # -- thaw ----------------------------------------------------------------
    def thaw(self, wait: bool = True) -> bool:
        """Request restores of cold packs; with ``wait`` poll until readable.

        Returns True when every pack is readable.
        """
        store, started = self.repo.store, time.monotonic()
        pending = self.plan.cold_packs
        self.rep.set(phase="thaw")
        while True:
            still = []
            for pack in pending:
                key = self.repo.pack_key(pack)
                info = store.head(key)
                if info.readable:
                    continue
                if info.restore is None:
                    store.request_restore(key, self.tier, self.days)
                    self.state["thaw_requested"][pack] = _now()
                still.append(pack)
            self.state["status"] = "thawing" if still else "downloading"
            self.state["waiting"] = len(still)
            self.save()
            if not still:
                return True
            if not wait:
                return False
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                raise ArchiveError(f"timeout: {len(still)} pack(s) still thawing; run the "
                                   "restore again later, it resumes")
            self.rep.check()
            time.sleep(self.poll_interval)
            pending = still

    # -- download --------------------------------------------------------------
    # Small files are restored in batches: one ranged read of a pack covers many
    # of them, and batches run on a thread pool (reads, zstd and BLAKE3 release the
    # GIL). A big file is written in order by one thread while the pool fetches
    # and decodes its next ranges.
    def _locs(self, f: FileEntry, found: dict | None = None) -> list:
        """[(chunk id, Location)] of a file (``found``: locations already looked up
        for a group of files; plan_restore found every chunk)."""
        ids = [bytes.fromhex(h) for h in f.chunks]
        if found is None:
            found = self.repo.locate_many(ids)
        return [(cid, found[cid]) for cid in ids]

    def _found(self, files) -> dict:
        """The chunk locations of ``files`` in one batched lookup."""
        return self.repo.locate_many(bytes.fromhex(h) for f in files for h in f.chunks)

    def _groups(self, f: FileEntry):
        """Ranges to fetch: runs of chunks contiguous within one pack, at most
        ``max_range`` read and ``max_range`` decoded (text decodes to 4x its packed
        size)."""
        group = None
        for cid, loc in self._locs(f):
            if (group and group["pack"] == loc.pack
                    and group["start"] + group["len"] == loc.offset
                    and group["len"] + loc.length <= self.max_range
                    and group["raw"] + loc.raw_len <= self.max_range):
                group["len"] += loc.length
                group["raw"] += loc.raw_len
                group["items"].append((cid, loc))
            else:
                if group:
                    yield group
                group = {"pack": loc.pack, "start": loc.offset, "len": loc.length,
                         "raw": loc.raw_len, "items": [(cid, loc)]}
        if group:
            yield group

    def _get(self, f: FileEntry, pack: str, start: int, length: int) -> memoryview:
        try:
            return self.repo.store.view(self.repo.pack_key(pack), start, length)
        except NotFound:
            raise IntegrityError(f"restore failed: {f.path}: pack {pack[:16]} is missing"
                                 ) from None

    def _decode(self, f: FileEntry, blob: memoryview, start: int, cid: bytes, loc):
        rel = loc.offset - start
        try:
            return decode(blob[rel:rel + loc.length], cid, loc.raw_len)
        except IntegrityError as exc:
            raise IntegrityError(
                f"restore failed: {f.path}: data in pack {loc.pack[:16]} is corrupt ({exc})"
            ) from None

    def _fetch(self, f: FileEntry, g: dict) -> list:
        blob = self._get(f, g["pack"], g["start"], g["len"])
        return [self._decode(f, blob, g["start"], cid, loc) for cid, loc in g["items"]]

    def batches(self):
        """Batches of the small files not yet done: ``(pack, start, end, [entry])``,
        one read of ``pack[start:end]``, streamed from the table in pack order; empty
        files go in batches without a pack."""
        empty: list = []
        for f in self.plan.table.empty_files():
            if f.seq not in self.done:
                empty.append(f)
                if len(empty) == MAX_BATCH_FILES:
                    yield (None, 0, 0, empty)
                    empty = []
        if empty:
            yield (None, 0, 0, empty)
        cur = None
        for pack, lo, hi, f in self.plan.table.small_files():
            if f.seq in self.done:
                continue
            f.span = (lo, hi - lo)
            if (cur is not None and cur[0] == pack and hi - cur[1] <= self.max_range
                    and lo - cur[2] <= MAX_GAP and len(cur[3]) < MAX_BATCH_FILES):
                cur[2] = max(cur[2], hi)
                cur[3].append(f)
                continue
            if cur is not None:
                yield _sorted_batch(cur)
            cur = [pack, lo, hi, [f]]
        if cur is not None:
            yield _sorted_batch(cur)

    def _restore_batch(self, batch, walkers: queue.Queue) -> list[int]:
        """Write the files of one batch; returns their seqs (all written). Over an
        existing tree, files already holding their content are found first: their
        data is neither read from the pack nor decoded."""
        pack, start, end, items = batch
        self._check()
        w = walkers.get()
        try:
            found = self._found(f for f in items if len(f.chunks) != 1 or not f.span)
            todo = []
            for f in items:
                if len(f.chunks) == 1 and f.span:
                    # its range is its one chunk: place and length from the plan, raw
                    # length the file's size (decode checks both, and the chunk's hash)
                    locs = [(bytes.fromhex(f.chunks[0]), Location(pack, *f.span, f.size))]
                else:
                    locs = self._locs(f, found)
                if not self._unchanged(f, locs, w):
                    todo.append((f, locs))
            # the range read, and one file decoded from it at a time
            cost = (end - start + max(f.size for f, _ in todo)) if todo else 0
            self.in_flight.take(cost)
            try:
                blob = (self._get(todo[0][0], pack, start, end - start) if pack and todo
                        else memoryview(b""))
                for f, locs in todo:
                    decoded: dict = {}  # a chunk repeated in the file decodes once
                    datas = []
                    for cid, loc in locs:
                        data = decoded.get(cid)
                        if data is None:
                            data = decoded[cid] = self._decode(f, blob, start, cid, loc)
                        datas.append(data)
                    self._write(f, w, iter([datas]))
                    del datas, decoded
                del blob
            finally:
                self.in_flight.give(cost)
            self.rep.add(files_done=len(items), bytes_done=sum(f.size for f in items))
            return [f.seq for f in items]
        finally:
            walkers.put(w)

    def _big_files(self, files, pool: ThreadPoolExecutor, walkers: queue.Queue) -> None:
        """Write the big files one at a time (each one's ranges fetched ahead on
        ``pool``), recording each."""
        for f in files:
            self._check()
            self._record(self._restore_big(f, pool, walkers))

    def _beside(self, side, pool: ThreadPoolExecutor, main) -> None:
        """Run ``side()`` on ``pool`` while ``main()`` runs here. The first to fail
        stops the other (``_check``); its error is raised once both have stopped
        (the walkers and pools they use outlive neither)."""
        fut = pool.submit(self._halting, side)
        mine = None
        try:
            self._halting(main)
        except BaseException as exc:
            mine = exc
        try:
            fut.result()
        except Halted:
            pass
        except BaseException:
            if mine is None or isinstance(mine, Halted):
                raise
        if mine is not None:
            raise mine

    def _halting(self, fn) -> None:
        try:
            fn()
        except BaseException:
            self._halt.set()
            raise

    def _restore_big(self, f: PlannedEntry, pool: ThreadPoolExecutor,
                     walkers: queue.Queue) -> list[int]:
        w = walkers.get()
        try:
            self._write_big(f, pool, w)
        finally:
            walkers.put(w)
        self.rep.add(files_done=1)
        return [f.seq]

    def _write_big(self, f: FileEntry, pool: ThreadPoolExecutor, w: DirWalker) -> None:
        if self._unchanged(f, self._locs(f), w):
            self.rep.add(bytes_done=f.size)
            return
        # ranges fetched ahead, bounded by their decoded bytes (workers x max_range),
        # not their count: a file of 4 MiB chunks has ranges of one 4 MiB chunk
        # and by the restore's bytes in flight: a range is taken from ``in_flight``
        # (read and decoded size) when fetched and given back once written; with
        # ranges already ahead, one that does not fit waits for the next write
        window: deque = deque()  # (future, decoded bytes, bytes taken from in_flight)
        groups = iter(self._groups(f))
        budget = self.workers * self.max_range
        ahead = 0
        waiting = None  # the next range, when it did not fit the budget yet
        held = 0  # taken from in_flight by this file, not yet given back

        def fill() -> None:
            nonlocal ahead, waiting, held
            while True:
                g = waiting if waiting is not None else next(groups, None)
                if g is None:
                    return
                cost = g["len"] + g["raw"]
                if held:  # this file holds room already: never wait on itself
                    if ((window and ahead + g["raw"] > budget)
                            or not self.in_flight.take(cost, wait=False)):
                        waiting = g
                        return
                else:
                    self.in_flight.take(cost)  # nothing of this file held: wait for room
                waiting = None
                held += cost
                window.append((pool.submit(self._fetch, f, g), g["raw"], cost))
                ahead += g["raw"]

        def in_order():
            nonlocal ahead, held
            while window:
                fut, raw, cost = window.popleft()
                datas = fut.result()
                ahead -= raw
                fill()  # ranges ahead are fetched while this one is written
                yield datas
                del datas
                held -= cost
                self.in_flight.give(cost)
                fill()
                self.rep.add(bytes_done=raw)
                self._check()

        try:
            fill()
            self._write(f, w, in_order())
        finally:
            for fut, _raw, _cost in window:
                fut.cancel()
            for fut, _raw, _cost in window:
                if not fut.cancelled():
                    try:
                        fut.result()  # a running fetch holds its buffers until it ends
                    except BaseException:
                        pass
            self.in_flight.give(held)

    def _unchanged(self, f: FileEntry, locs: list, w: DirWalker) -> bool:
        """Over an existing tree (``overwrite``): a regular file already holding
        exactly this content (every chunk's BLAKE3 checked) is kept, and only its
        mode and mtime are set (``writer_process.kept``, as the writers check)."""
        if not self.overwrite:
            return False
        parts = self._parts(f.path)
        pfd = w.open(parts[:-1])
        return pfd is not None and kept(pfd, parts[-1], self._mode(f), f.mtime_ns, f.size,
                                        [(cid, 0, 0, loc.raw_len) for cid, loc in locs])

    def _write(self, f: FileEntry, w: DirWalker, pieces) -> None:
        """Write ``pieces`` (lists of decoded chunks, in file order), then set the
        mode and mtime. A file that was absent when the restore started is created
        under its own name (``O_EXCL|O_NOFOLLOW``: one folder update, where a temp
        name costs a create and a rename); on failure it is removed. Anything else
        is written to a temp name and renamed over the entry."""
        parts = f.path.split("/")  # checked by preflight (check_relpath), like all paths
        # the folders exist by now (made before the files): no mkdir per file
        pfd = w.open(parts[:-1])
        if pfd is None:
            pfd = w.open(parts[:-1], create=True)
        mode = self._mode(f)
        tmp = None
        fd = self._create_new(f, pfd, parts[-1], mode)
        made = parts[-1] if fd is not None else None
        if fd is None:
            tmp = made = f".{parts[-1]}{TMP_MARK}{secrets.token_hex(4)}"
            fd = os.open(tmp, CREATE_FLAGS, 0o600, dir_fd=pfd)
        try:
            write_content(fd, f.size, itertools.chain.from_iterable(pieces))
            if tmp is not None:
                os.fchmod(fd, mode)
            os.utime(fd, ns=(f.mtime_ns, f.mtime_ns))
        except BaseException:
            os.close(fd)
            os.unlink(made, dir_fd=pfd)  # created by this call (O_EXCL): no partial file
            raise
        os.close(fd)
        if tmp is not None:
            self._replace(f, tmp, w)

    def _create_new(self, f: FileEntry, pfd: int, name: str, mode: int) -> int | None:
        """An fd of ``name`` created now, for a file absent when the restore began;
        None when the name is taken (a partial file of a killed run, or anything
        else: the temp-name path checks it). ``mode`` is already masked."""
        if f.seq not in self.new:
            return None
        try:
            return os.open(name, CREATE_FLAGS, mode, dir_fd=pfd)
        except FileExistsError:
            return None

    def _replace(self, f: FileEntry, tmp: str, w: DirWalker) -> None:
        """Move ``tmp`` over the entry's name in its folder (re-walked, never followed)."""
        parts = self._parts(f.path)
        pfd = w.open(parts[:-1])
        try:
            st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if (st is not None and not self.overwrite and f.seq not in self.done
                and not (f.seq in self.new and stat.S_ISREG(st.st_mode))):
            os.unlink(tmp, dir_fd=pfd)
            raise Exists(f"{f.path}: exists; pass overwrite=True (--overwrite)")
        if st is not None and stat.S_ISDIR(st.st_mode):
            os.unlink(tmp, dir_fd=pfd)
            raise Exists(f"{f.path}: a directory is in the way")
        os.replace(tmp, parts[-1], src_dir_fd=pfd, dst_dir_fd=pfd)

    def _record(self, seqs: list[int]) -> None:
        with self._record_lock:
            for seq in seqs:
                self.done.add(seq)
            self.save(force=False)

    def _check(self) -> None:
        """Stop here when the restore is cancelled or its other half failed."""
        self.rep.check()
        if self._halt.is_set():
            raise Halted("the other half of the restore failed")

    def _write_link(self, f: FileEntry, w: DirWalker) -> None:
        parts = self._parts(f.path)
        tmp = f".{parts[-1]}{TMP_MARK}{secrets.token_hex(4)}"
        os.symlink(f.target, tmp, dir_fd=w.open(parts[:-1], create=True))
        self._replace(f, tmp, w)

    def _mode(self, f: FileEntry) -> int:
        """The mode to apply; setuid/setgid/sticky bits are dropped and reported."""
        if f.mode & SPECIAL_BITS:
            self.state.setdefault("modes_masked", []).append(f.path)
        return safe_mode(f.mode, self.umask)

    def _created(self, rel: str, seq: int | None = None) -> None:
        """A folder this restore creates (``DirWalker``'s ``on_create``; batch threads
        too): a bit for the archive's folders, a name for any other."""
        if seq is None and self._creating is not None and rel == self._creating[0]:
            seq = self._creating[1]
        if seq is None:
            f = self.plan.table.lookup(rel)
            seq = f.seq if f is not None and f.type == DIR else None
        with self._lock:
            if seq is not None:
                self.created.add(seq)
            elif rel not in self.state.setdefault("created_other", []):
                self.state["created_other"].append(rel)

    def _finish_dirs(self, w: DirWalker) -> None:
        """Modes and mtimes of folders, deepest first: those this restore created,
        and existing ones only with ``overwrite``. Modes are masked (safe_mode)."""
        for f in self.plan.table.dirs_deepest_first():
            if f.seq in self.created or self.overwrite:
                fd = w.open(f.path.split("/"))
                if fd is not None:
                    os.fchmod(fd, self._mode(f))
                    os.utime(fd, ns=(f.mtime_ns, f.mtime_ns))
        for rel in sorted(self.state.get("created_other", []), key=lambda p: -p.count("/")):
            fd = w.open(rel.split("/"))
            if fd is not None:
                os.fchmod(fd, safe_mode(0o777, self.umask))

    def run(self, wait: bool = True) -> dict:
        """Restore (resuming unfinished state). Returns the final state dict."""
        self.preflight()
        table = self.plan.table
        self.rep.set(files_total=self.plan.file_count, bytes_total=self.plan.raw_bytes)
        if not self.thaw(wait):
            return self.state
        self.rep.set(phase="restore")
        os.makedirs(self.target, exist_ok=True)
        walkers: queue.Queue = queue.Queue()
        try:
            with (DirWalker(self.target, on_create=self._created) as w,
                  ThreadPoolExecutor(self.workers, thread_name_prefix="lens-get") as pool,
                  ThreadPoolExecutor(self.workers, thread_name_prefix="lens-put") as writers,
                  ThreadPoolExecutor(1, thread_name_prefix="lens-big") as bigs):
                # folders this restore creates get the archive's modes at the end; they
                # are recorded before they exist, so a resumed restore knows them too
                # (into a new target: all of them, without looking)
                for f in table.entries(DIR):
                    if self._fresh or w.lstat(self._parts(f.path)) is None:
                        self._created(f.path, f.seq)
                self.save()
                try:
                    for f in table.entries(DIR):
                        self._creating = (f.path, f.seq)  # no lookup when it is made
                        w.open(self._parts(f.path), create=True)
                finally:
                    self._creating = None
                if self.done.count:  # resumed: what is done already counts as progress
                    for seq, size in table.sizes(FILE):
                        if seq in self.done:
                            self.rep.add(files_done=1, bytes_done=size)
                # each writing thread walks with its own DirWalker: a walker's cached
                # fds are not shared, so none is closed under another thread
                keep = walker_fds(self.workers + 1)
                for _ in range(self.workers + 1):
                    walkers.put(DirWalker(self.target, keep=keep, on_create=self._created))
                bigs_left = (f for f in table.big_files() if f.seq not in self.done)
                if self._writer_processes_pay():
                    # the big files here while writer processes write the small
                    # ones: the big files alone kept about one core busy (reads,
                    # decoding) and the small files' inode creation the other
                    self._beside(lambda: self._big_files(bigs_left, pool, walkers), bigs,
                                 lambda: self._small_by_processes(walkers))
                else:
                    # big files one at a time (their ranges fetched ahead on
                    # ``pool``), then the batches of small files on ``writers``: run
                    # together, the nine threads spent their time handing the GIL
                    # around (2 GB + 100,000 small files: 14.7 s together, 13.0 s
                    # one after the other)
                    self._big_files(bigs_left, pool, walkers)
                    self._run_bounded((lambda b=b: writers.submit(self._restore_batch, b,
                                                                  walkers)
                                       for b in self.batches()), 2 * self.workers)
                for f in table.entries(SYMLINK):
                    if f.seq not in self.done:
                        self._write_link(f, w)
                        self.done.add(f.seq)
                self._finish_dirs(w)
        except (IntegrityError, UnsafePath, Exists) as exc:
            self.state["status"], self.state["error"] = "failed", str(exc)
            self.save()
            raise
        finally:
            while not walkers.empty():
                walkers.get().close()
        self.state["status"] = "done"
        self.save()
        self.rep.finish()
        return self.state

    def _writer_processes_pay(self) -> bool:
        """Writer processes for this restore's small files: a local repository (they
        map its packs themselves) and enough small files to pay for starting them."""
        return (self.writer_processes > 0
                and isinstance(self.repo.store, LocalStore)
                and self.plan.table.count_small() >= self.writers_from)

    def _small_by_processes(self, walkers: queue.Queue) -> None:
        """The batches of small files, their new files written by writer processes
        (:mod:`.writer_process`), and over a copy (``overwrite``) the files that
        were there checked and kept by them when unchanged; the others (empty
        files, files of a resumed restore that existed before it) and any a writer
        hands back are written here, as by ``_restore_batch``."""
        pool = None  # started with the first batch for it (a resumed restore may have none)
        ok = False
        try:
            for batch in self.batches():
                self._check()
                pack, start, end, items = batch
                # new files, and over a copy the others to keep if unchanged
                theirs = ([f for f in items if self.overwrite or f.seq in self.new]
                          if pack is not None else [])
                if len(theirs) < len(items):
                    mine = [f for f in items if pack is None
                            or not (self.overwrite or f.seq in self.new)]
                    self._record(self._restore_batch((pack, start, end, mine), walkers))
                if theirs:
                    if pool is None:
                        pool = WriterPool(self.writer_processes, self.target)
                    if pool.full():
                        self._writers_answer(pool, walkers)
                    pool.submit(self._writer_request(pack, start, end, theirs),
                                (pack, start, end, theirs))
            while pool is not None and pool.queue:
                self._writers_answer(pool, walkers)
            ok = True
        finally:
            if pool is not None:
                pool.close(kill=not ok)

    def _writer_request(self, pack: str, start: int, end: int, files: list) -> tuple:
        found = self._found(f for f in files if len(f.chunks) != 1 or not f.span)
        out = []
        for f in files:
            if len(f.chunks) == 1 and f.span:  # its range is its one chunk (see batches)
                chunks = [(bytes.fromhex(f.chunks[0]), f.span[0] - start, f.span[1], f.size)]
            else:
                chunks = [(cid, loc.offset - start, loc.length, loc.raw_len)
                          for cid, loc in self._locs(f, found)]
            out.append((f.path, f.size, self._mode(f), f.mtime_ns, chunks,
                        f.seq not in self.new))  # keep it if it holds this content
        return self.repo.store.path_of(self.repo.pack_key(pack)), start, end - start, out

    def _writers_answer(self, pool: WriterPool, walkers: queue.Queue) -> None:
        """Take the oldest batch's answer: record what a writer wrote, write here
        what it handed back, raise what failed (as the threads' path words it)."""
        (pack, start, end, files), answers = pool.next_answer()
        done, retry = [], []
        for f, answer in zip(files, answers, strict=True):
            if answer == W_OK:
                done.append(f)
            elif answer == W_RETRY:
                retry.append(f)
            else:
                _, kind, err, message = answer
                if kind == "corrupt":
                    raise IntegrityError(f"restore failed: {f.path}: data in pack {pack[:16]} "
                                         f"is corrupt ({message})")
                if kind == "missing":
                    raise IntegrityError(f"restore failed: {f.path}: pack {pack[:16]} is "
                                         "missing")
                if kind == "unsafe":
                    raise UnsafePath(message)
                raise OSError(err, f"{f.path}: {message}")
        self.rep.add(files_done=len(done), bytes_done=sum(f.size for f in done))
        self._record([f.seq for f in done])
        if retry:
            self._record(self._restore_batch((pack, start, end, retry), walkers))

    def _run_bounded(self, jobs, limit: int) -> None:
        """Run ``jobs`` (callables that submit one job and return its future), at most
        ``limit`` at once, recording each finished job: the work list is never held
        whole, whatever the file count."""
        running: set = set()
        jobs = iter(jobs)

        def refill() -> None:
            while len(running) < limit and (submit := next(jobs, None)) is not None:
                running.add(submit())

        try:
            refill()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.discard(fut)
                    self._record(fut.result())
                refill()
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


class Halted(Exception):
    """Raised in one half of a restore when the other half failed (never escapes
    ``Restorer._beside``)."""


class WriterPool(HelperPool):
    """Writer processes (:mod:`.writer_process`) for one restore's target."""

    what = "writer process"
    again = "restore again (it resumes)"

    def __init__(self, n: int, target: str):
        super().__init__("jupyter_ext.archive.writer_process", n, (target,))

    def next_answer(self) -> tuple:
        """(tag, answers) of the oldest request: per file, as ``write_batch`` gives."""
        proc, tag = self.queue.popleft()
        answers = read_message(proc.stdout)
        if answers is None or len(answers) != len(tag[3]):
            self.stopped(proc)
        return tag, answers


def _sorted_batch(batch: list) -> tuple:
    """Folder by folder within a batch: the walker's cached folder fds get reused."""
    pack, start, end, items = batch
    return pack, start, end, sorted(items, key=lambda f: f.path)
