"""Create an archive: chunk, deduplicate, compress, pack, upload; publish last.

Crash safety: a pack's index is written only after the pack, the manifest only
after every pack, and the archive entry (what makes it visible) last. A re-run
after ``kill -9`` finds the chunks of every indexed pack and does not upload
them again. Unchanged files reuse their chunk lists without being read: same
path, size, mtime, ctime and inode as in the parent archive, which is the latest
archive of the same sources (whatever its name), or the one given as ``parent``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import blake3

from ..constants import DEFAULT_PACK_SIZE
from .blobs import CODEC_BYTE, PACK_MAGIC, chunk_id, encode_parts
from .chunks import iter_chunks
from .errors import Cancelled, ConfigError
from .filetable import FileTable
from .manifest import FILE, ArchiveEntry, FileEntry, Manifest
from .pricing import check_class
from .progress import Reporter
from .reader_process import FAILED, GREW, OK, read_one_chunk
from .readers import ReaderPool, batches
from .repository import Repository
from .scan import check_sources, walk_sources
from .sources import Changed, open_source

SMALL_BLOB = 64 * 1024        # blobs under this are buffered by FilePacker
WRITE_BUFFER = 1024 * 1024    # FilePacker writes its buffer once it holds this much


@dataclass
class ArchiveOptions:
    name: str
    tags: dict
    meta: dict
    storage_class: str = "STANDARD"
    level: int = 3
    pack_size: int = DEFAULT_PACK_SIZE
    workers: int = 2
    upload_workers: int = 4
    readers: int = 0  # reader processes for small files (0: read them in a thread)
    readers_from: int = 2000  # ... used from this many files under the chunker's minimum
    dry_run: bool = False
    use_parent: bool = True
    parent: str = ""  # archive id (or name) to compare with; "" = latest of the same sources

    def validate(self) -> ArchiveOptions:
        check_class(self.storage_class)
        if not self.name or len(self.name) > 200 or "\x00" in self.name:
            raise ConfigError("name: must be 1-200 characters")
        if not -7 <= self.level <= 22:
            raise ConfigError(f"level: {self.level} is outside the zstd range -7..22 (0 = raw)")
        if not 64 * 1024 <= self.pack_size <= 1024**3:
            raise ConfigError(f"pack_size: {self.pack_size} is outside 64 KiB..1 GiB")
        if self.workers < 1 or self.upload_workers < 1:
            raise ConfigError("workers: must be at least 1")
        if not 0 <= self.readers <= 64:
            raise ConfigError(f"readers: {self.readers} is outside 0..64")
        return self


class Packer:
    """Accumulates blobs into one pack in memory (one growing buffer, no join copy);
    stores that build objects on local disk get a :class:`FilePacker` instead."""

    def __init__(self):
        self.buf = bytearray(PACK_MAGIC)
        self.chunks: list = []

    @property
    def size(self) -> int:
        return len(self.buf)

    def add(self, cid_hex: str, codec: int, payload, raw_len: int) -> None:
        self.chunks.append([cid_hex, len(self.buf), 1 + len(payload), raw_len])
        self.buf.append(codec)
        self.buf += payload

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def seal(self) -> tuple[bytearray, str, list]:
        return self.buf, blake3.blake3(self.buf).hexdigest(), self.chunks

    def discard(self) -> None:
        self.buf = bytearray()


class FilePacker:
    """A pack written to a temp file as its blobs arrive and hashed on the way: no
    pack is held in memory, and the store renames the file into place (one write).

    Small blobs are kept (not copied) until a MiB of them is there, then joined,
    written and hashed by a thread of the packer's own, in order, one MiB in flight:
    the thread adding blobs (with reader processes, the one thread that takes every
    small file) goes on. ``bytes.join`` of a MiB of bytes runs without the GIL."""

    def __init__(self, spool):
        self.fd, self.path = spool()
        self.hasher = blake3.blake3()
        self.parts: list = [PACK_MAGIC]
        self.buffered = len(PACK_MAGIC)
        self.size = len(PACK_MAGIC)
        self.chunks: list = []
        self._writer: ThreadPoolExecutor | None = None  # made at the first buffered write
        self._pending = None  # the parts being written

    def add(self, cid_hex: str, codec: int, payload, raw_len: int) -> None:
        self.chunks.append([cid_hex, self.size, 1 + len(payload), raw_len])
        self.size += 1 + len(payload)
        self.parts.append(CODEC_BYTE[codec])
        if len(payload) < SMALL_BLOB:
            self.parts.append(payload)
            self.buffered += 1 + len(payload)
            if self.buffered >= WRITE_BUFFER:
                self._flush_behind()
            return
        self._wait()
        self._flush(payload)

    def _flush_behind(self) -> None:
        """Hand the parts to the writer thread (after the previous ones are written)."""
        self._wait()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="lens-pack")
        parts, self.parts, self.buffered = self.parts, [], 0
        self._pending = self._writer.submit(self._write, parts, b"")

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # a write error surfaces here

    def _flush(self, payload=b"") -> None:
        """Write the parts (then ``payload``, without copying it into them)."""
        parts, self.parts, self.buffered = self.parts, [], 0
        self._write(parts, payload)

    def _write(self, parts: list, payload) -> None:
        buf = b"".join(parts)
        n = os.writev(self.fd, (buf, payload))  # usually one call
        if n < len(buf):
            _write_all(self.fd, memoryview(buf)[n:])
            n = len(buf)
        if n < len(buf) + len(payload):
            _write_all(self.fd, memoryview(payload)[n - len(buf):])
        self.hasher.update(buf)
        if payload:
            self.hasher.update(payload)

    def __bool__(self) -> bool:
        return bool(self.chunks)

    def seal(self) -> tuple[str, str, list]:
        try:
            self._wait()
            if self.fd >= 0:
                self._flush()
        finally:
            self._close()
        return self.path, self.hasher.hexdigest(), self.chunks

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # no write runs once the fd is closed
            self._writer = None
        self._pending = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self._close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Archiver:
    def __init__(self, repo: Repository, opts: ArchiveOptions, reporter: Reporter | None = None,
                 after_scan=None):
        """``after_scan(items)``, if given, runs between the scan and the first read
        (items: ``[(FileEntry, sources.Source)]``); tests use it to swap files there."""
        self.repo = repo
        self.after_scan = after_scan
        self.opts = opts.validate()
        self.rep = reporter or Reporter()
        self._claim_lock = threading.Lock()
        self._claimed: set[bytes] = set()
        self._uploads = ThreadPoolExecutor(opts.upload_workers, thread_name_prefix="lens-up")
        # packs sealed but not yet stored; bounds memory to about this many packs
        self._inflight = threading.BoundedSemaphore(opts.upload_workers)
        self._futures: list = []
        self._error: BaseException | None = None
        self._abort = threading.Event()  # set on the first failure: workers stop early
        self.pack_sizes: list[int] = []
        self._sizes_lock = threading.Lock()

    # -- packs -----------------------------------------------------------------
    def _packer(self):
        """A new pack: in a temp file where the store builds objects on local disk
        (memory then does not grow with packs in flight), else in memory."""
        spool = self.repo.spool()
        return FilePacker(spool) if spool is not None and not self.opts.dry_run else Packer()

    def _ship(self, packer) -> None:
        if not packer:
            packer.discard()
            return
        size = packer.size
        data, pid, chunks = packer.seal()
        with self._sizes_lock:
            self.pack_sizes.append(size)
        if self.opts.dry_run:
            self.rep.add(packs=1, bytes_stored=size)
            packer.discard()  # a reader's pack is a temp file
            return
        self._inflight.acquire()

        def upload():
            try:
                self.repo.add_pack(data, pid, chunks, self.opts.storage_class, size=size)
                with self._claim_lock:  # indexed now: locate() finds them
                    self._claimed.difference_update(bytes.fromhex(c[0]) for c in chunks)
                self.rep.add(packs=1, bytes_stored=size)
            except BaseException as exc:
                self._error = exc
                raise
            finally:
                self._inflight.release()

        self._futures.append(self._uploads.submit(upload))
        if self._error:
            raise self._error

    def _is_new(self, cid: bytes) -> bool:
        if self.repo.locate(cid) is not None:
            return False
        with self._claim_lock:  # claims are dropped once indexed: look again under it
            if cid in self._claimed or self.repo.locate(cid) is not None:
                return False
            self._claimed.add(cid)
            return True

    def _new_ids(self, cids: list) -> list[bool]:
        """``_is_new`` of each of ``cids`` (in order: a repeat of a new id is not
        new), with one index lookup and one claim for all (per id, they were most
        of the archiver's time on trees of small files)."""
        repo = self.repo
        known = repo.locate_many(cids)
        with self._claim_lock:
            claimed = self._claimed
            maybe = [c for c in cids if c not in known and c not in claimed]
            if maybe:  # indexed (and unclaimed) since the lookup: look again under it
                known.update(repo.locate_many(maybe))
            out = []
            for cid in cids:
                new = cid not in known and cid not in claimed
                if new:
                    claimed.add(cid)
                out.append(new)
        return out

    # -- files -----------------------------------------------------------------
    def _file(self, seq: int, entry, src) -> None:
        """Read, chunk, hash and compress one file. A big file fills packs of its own
        (a partial restore thaws about its packed size); a small file's new blobs go
        to the one shared pack once the file is read (bounded: under a quarter pack)."""
        if entry.size < self.repo.params.min_size and self._one_chunk(seq, entry, src):
            return
        big = entry.size >= self.opts.pack_size // 4
        packer = self._packer() if big else None
        pending: list = []
        try:
            chunks = []
            total = 0
            try:
                # O_NOFOLLOW|O_NONBLOCK, then fstat against the scan: a file swapped
                # for a link, a FIFO or another file since the scan is skipped
                f = os.fdopen(open_source(src), "rb", buffering=0)
            except OSError as exc:
                self._unreadable[entry.path] = (exc.strerror if isinstance(exc, Changed)
                                                else str(exc))
                return
            with f:
                for view in self._read(f, entry):
                    self.rep.check()
                    if self._abort.is_set():
                        raise Cancelled("stopped after an earlier failure")
                    cid = chunk_id(view)
                    chunks.append(cid)
                    n = len(view)
                    total += n
                    if self._is_new(cid):
                        codec, payload = encode_parts(view, self.opts.level)
                        self.rep.add(bytes_done=n, bytes_new=n)
                        if packer is None:
                            # the read buffer is reused: a raw payload (a view) is copied
                            pending.append((cid.hex(), codec, payload if isinstance(payload, bytes)
                                            else bytes(payload), n))
                            continue
                        packer.add(cid.hex(), codec, payload, n)
                        if packer.size >= self.opts.pack_size:
                            self._ship(packer)
                            packer = self._packer()
                    else:
                        self.rep.add(bytes_done=n)
            if entry.path in self._unreadable:
                return
            self._table.set_chunks(seq, chunks, total)  # what was read wins over the scan
        finally:
            # claimed chunks are stored even if the file failed: others may use them
            if packer is not None:
                self._ship(packer)
            elif pending:
                self._add_shared(pending)
        self.rep.add(files_done=1)

    def _one_chunk(self, seq: int, entry, src) -> bool:
        """A file under the chunker's minimum is one chunk: one read, no chunker, one
        progress update (on trees of small files the per-file overhead is the cost).
        False if the file grew past its scanned size: ``_file`` then reads it again."""
        if self._abort.is_set():
            raise Cancelled("stopped after an earlier failure")
        self.rep.check()
        status, data = read_one_chunk(src, entry.size)
        if status == FAILED:
            self._unreadable[entry.path] = data
            return True
        if status == GREW:
            return False
        n = len(data)
        if not n:
            self._table.set_chunks(seq, [], 0)
            self.rep.add(files_done=1)
            return True
        cid = chunk_id(data)
        if self._is_new(cid):
            codec, payload = encode_parts(data, self.opts.level)
            self._add_shared(((cid.hex(), codec, payload, n),))
            self.rep.add(bytes_done=n, bytes_new=n, files_done=1)
        else:
            self.rep.add(bytes_done=n, files_done=1)
        self._table.set_chunks(seq, [cid], n)  # what was read wins over the scan
        return True

    def _small_files_by_readers(self, feed) -> None:
        """Files of ``feed`` under the chunker's minimum go to reader processes a
        batch at a time (read, hashed and compressed there, and the blobs kept here
        packed there); this thread keeps deduplication, the packs' indexes and the
        table. Others are read here."""
        min_size = self.repo.params.min_size
        rep, table = self.rep, self._table

        def one_chunk_files():
            for item in feed:
                if item[1].size < min_size:
                    yield item
                else:
                    self._file(*item)

        def take_answer():
            answer = pool.next_answer()
            if answer is None:  # a pack sealed and shipped
                return
            proc, items, answers = answer
            mask, kept, results, done, new_bytes, files = bytearray(), [], [], 0, 0, 0
            fresh = iter(self._new_ids([v[0] for status, v in answers
                                        if status == OK and v is not None]))
            grew = []
            for (seq, entry, src), (status, value) in zip(items, answers, strict=True):
                if status == FAILED:
                    self._unreadable[entry.path] = value
                    continue
                if status == GREW:
                    grew.append((seq, entry, src))
                    continue
                files += 1
                if value is None:
                    results.append((b"", 0, seq))
                    continue
                cid, n, _codec, payload_len = value
                if next(fresh):
                    mask.append(1)
                    kept.append((cid.hex(), payload_len, n))
                    new_bytes += n
                else:
                    mask.append(0)
                done += n
                results.append((cid, n, seq))  # what was read wins over the scan
            pool.keep(proc, bytes(mask), kept)  # the reader packs them meanwhile
            table.set_many(results)
            rep.add(bytes_done=done, bytes_new=new_bytes, files_done=files)
            for item in grew:
                self._file(*item)

        pool = None  # started with the first batch: unchanged trees never need it
        ok = False
        try:
            for batch in batches(one_chunk_files()):
                if self._abort.is_set():
                    raise Cancelled("stopped after an earlier failure")
                rep.check()
                if pool is None:
                    pool = ReaderPool(self.opts.readers, self.opts.level, self.opts.pack_size,
                                      self._pack_file, self._ship)
                while pool.full():  # a seal answered frees no request: take on
                    take_answer()
                pool.submit(batch, [(src.path, src.dev, src.ino, e.size) for _, e, src in batch])
            if pool is not None:
                while pool.queue:
                    take_answer()
                pool.seal_all()
                while pool.queue:
                    take_answer()
            ok = True
        finally:
            if pool is not None:
                pool.close(kill=not ok)

    def _pack_file(self) -> str:
        """A new temp file for a reader process to build a pack in: in the
        repository where the store builds objects on local disk (renamed into
        place), else a private one (read back for the upload)."""
        spool = self.repo.spool()
        if spool is not None and not self.opts.dry_run:
            fd, path = spool()
        else:
            fd, path = tempfile.mkstemp(prefix="lens-pack-")
        os.close(fd)
        return path

    def _add_shared(self, blobs) -> None:
        with self._shared_lock:
            for cid_hex, codec, payload, n in blobs:
                self._shared.add(cid_hex, codec, payload, n)
                if self._shared.size >= self.opts.pack_size:
                    full, self._shared = self._shared, self._packer()
                    self._ship(full)  # may wait for an upload slot: back-pressure

    def _read(self, f, entry):
        """Chunks of an open file; a read error skips the file (recorded, not fatal)."""
        try:
            yield from iter_chunks(f, self.repo.params)
        except OSError as exc:
            self._unreadable[entry.path] = str(exc)

    def run(self, sources: list[str]):
        """Archive ``sources``; return (ArchiveEntry | None for dry-run, Manifest, Progress).

        The scanned files live in an on-disk FileTable, not in memory; the returned
        manifest carries the metadata and statistics, not the file list (its size
        in bytes is ``self.manifest_size``)."""
        self._table = FileTable()
        self._scanner: threading.Thread | None = None
        try:
            return self._run(sources)
        finally:
            self._table.stop_scan()
            if self._scanner is not None:
                self._scanner.join()
            self._table.close()

    def _scan(self, checked: list, skipped: list) -> None:
        """Walk the sources into the table (in a thread of its own unless a test's
        ``after_scan`` needs the whole scan first); the table's followers are told
        when it ends, and how."""
        table = self._table
        try:
            walk_sources(checked, table, skipped)
            table.flush()
            nfiles, nbytes = table.stats()
            self.rep.set(files_total=nfiles, bytes_total=nbytes)
        except BaseException as exc:
            table.scan_done(exc)
            return
        table.scan_done()

    def _run(self, sources: list[str]):
        repo, opts, rep, table = self.repo, self.opts, self.rep, self._table
        checked = check_sources(sources)  # a missing source fails before anything runs
        skipped: list[str] = []
        if self.after_scan is None:
            # the reads follow the scan (small files go to the readers from the first
            # page of rows): on trees of small files the scan took a tenth of the time
            self._scanner = threading.Thread(target=self._scan, args=(checked, skipped),
                                             name="lens-scan", daemon=True)
            self._scanner.start()
        else:
            self._scan(checked, skipped)
            table.wait_scanned()
            self.after_scan(table.items())
        self._unreadable: dict[str, str] = {}
        self.parent_id = ""
        rep.set(phase="index")
        repo.load_index()
        has_parent = self._parent(sources) if opts.use_parent else False
        rep.set(phase="archive")
        self.unchanged_files = 0
        big = self.opts.pack_size // 4

        counting = threading.Lock()

        def going() -> None:
            """Run while a feed waits for the scan: a cancel or a failure elsewhere
            ends the wait."""
            rep.check()
            if self._abort.is_set():
                raise Cancelled("stopped after an earlier failure")

        def changed(item, old) -> bool:
            """Whether a big file must be read: not when ``old`` (its parent entry)
            shows it unchanged and its chunks are stored. (The others are taken from
            the parent a page at a time: ``files_in_path_order``.)"""
            seq, entry, _src = item
            if (old is not None and unchanged(old, entry)
                    and all(repo.locate(bytes.fromhex(h)) for h in old.chunks)):
                table.set_chunks(seq, [bytes.fromhex(h) for h in old.chunks], entry.size)
                with counting:  # two feeds run this at once
                    self.unchanged_files += 1
                rep.add(bytes_done=entry.size, files_done=1)
                return False
            return True

        def big_files():
            """Big files, largest first (once the scan is over): spreads the work over
            the workers."""
            for seq in table.big_files(big, going):
                item = (seq, *table.get(seq))
                if changed(item, table.parent_of(item[1].path) if has_parent else None):
                    yield item

        def files_in_path_order(lo: int, hi: int):
            """Files of ``lo`` to ``hi`` bytes in path order, so shared packs hold
            neighbours (a restore writes them folder by folder). With a parent, its
            unchanged files take its chunk ids a page at a time, in the table."""
            if not has_parent:
                for page in table.pages("type = ? AND size >= ? AND size < ?",
                                        (FILE, lo, hi), follow=going):
                    yield from page
                return
            for reused, items in table.pages_after_reuse(lo, hi, follow=going):
                yield from reread(reused)
                yield from items

        def reread(reused: list) -> list:
            """Count the files that took the parent's chunk ids; those whose chunks
            are not all stored (a pack lost since) are read again: their items."""
            ids = {blob[i:i + 32] for _seq, blob, _size in reused
                   for i in range(0, len(blob), 32)}
            lost = repo.missing(ids) if ids else set()
            again = [seq for seq, blob, _size in reused
                     if lost and any(blob[i:i + 32] in lost for i in range(0, len(blob), 32))]
            kept = len(reused) - len(again)
            if kept:
                with counting:  # two feeds run this at once
                    self.unchanged_files += kept
                skip = set(again)
                rep.add(bytes_done=sum(size for seq, _b, size in reused if seq not in skip),
                        files_done=kept)
            return table.unreuse(again) if again else []

        self._shared, self._shared_lock = self._packer(), threading.Lock()
        try:
            # Workers take the next file from shared iterators: no future or queued
            # work item per file (they cost ~1 KB each on trees of many files). The
            # first worker takes the small files, the others the big ones: small files
            # cost Python time per file (two threads on them only contend for the
            # GIL), big ones cost compression, which runs without it. Whoever runs
            # out of work joins the big files. With many small files, reader
            # processes do their per-file work on every core, and the files between
            # the chunker's minimum and a big one go to the other threads, after the
            # big ones (read in the first thread they would hold up the readers).
            one_chunk = repo.params.min_size
            by_readers = (opts.readers > 0 and table.files_under_at_least(
                one_chunk, opts.readers_from, going))
            if by_readers:
                small = (files_in_path_order(0, one_chunk), threading.Lock())
                large = (itertools.chain(big_files(), files_in_path_order(one_chunk, big)),
                         threading.Lock())
            else:
                small = (files_in_path_order(0, big), threading.Lock())
                large = (big_files(), threading.Lock())

            def work(feeds):
                for feed, take in feeds:
                    if feed is small[0] and by_readers:
                        try:  # this thread alone takes the small files
                            self._small_files_by_readers(feed)
                        except BaseException as exc:
                            with failed:
                                failures.append(exc)
                            self._abort.set()
                            return
                        continue
                    while not self._abort.is_set():
                        try:  # a feed waiting for the scan may raise too
                            with take:
                                item = next(feed, None)
                            if item is None:
                                break
                            self._file(*item)
                        except BaseException as exc:
                            with failed:  # the first failure is the one reported
                                failures.append(exc)
                            self._abort.set()
                            return

            failures: list = []
            failed = threading.Lock()
            plans = [[small, large]] + [[large]] * (opts.workers - 1)
            with ThreadPoolExecutor(opts.workers, thread_name_prefix="lens-chunk") as workers:
                for fut in [workers.submit(work, plan) for plan in plans]:
                    fut.result()
            if failures:
                raise failures[0]
            self._ship(self._shared)
            for fut in self._futures:
                fut.result()
        finally:
            self._uploads.shutdown(wait=True, cancel_futures=True)
            self._shared.discard()  # a no-op once stored; else its temp file goes
        if self._error:
            raise self._error
        table.wait_scanned()  # over: every feed followed it to its end
        nfiles, _ = table.stats()
        if self._unreadable:
            table.drop(self._unreadable)
            skipped += [f"{p}: {why}" for p, why in sorted(self._unreadable.items())]
            nfiles, _ = table.stats()
        created = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        files = table.manifest_files()
        manifest = Manifest(
            name=opts.name, owner=str(repo.owner), created=created,
            files=files, tags=dict(opts.tags), meta=dict(opts.meta),
            sources=source_paths(sources), storage_class=opts.storage_class,
            chunker=repo.params.as_dict(), parent=self.parent_id,
            stats={"files": nfiles, "size": rep.p.bytes_total, "new_bytes": rep.p.bytes_new,
                   "added_bytes": rep.p.bytes_stored, "packs": rep.p.packs,
                   "unchanged_files": self.unchanged_files,
                   "skipped": skipped[:1000], "skipped_count": len(skipped)})
        # Not checked again as it is encoded: the scan's paths are clean by construction
        # (names from listdir under one top name: no empty, "." or ".." component, no
        # NUL; links checked by check_link), unique, and chunk ids are hashes (the
        # parent's were checked as its manifest was read). A restore checks every entry.
        if opts.dry_run:
            sizes: list = []
            manifest.write(lambda piece: sizes.append(len(piece)))
            self.manifest_size = sum(sizes)
            manifest.files = []  # the table closes when run() returns
            rep.finish()
            return None, manifest, rep.p
        rep.set(phase="publish")
        rep.check()  # last chance to stop: nothing is visible yet
        mid, self.manifest_size = repo.put_manifest(manifest)
        manifest.files = []
        entry = ArchiveEntry(
            id=mid, name=opts.name, owner=str(repo.owner), created=created, manifest=mid,
            tags=dict(opts.tags), meta=dict(opts.meta), storage_class=opts.storage_class,
            files=nfiles, size=rep.p.bytes_total, added_bytes=rep.p.bytes_stored,
            packs=rep.p.packs,
            sources=manifest.sources)
        repo.publish(entry)
        return entry, manifest, rep.finish()

    def _parent(self, sources: list[str]) -> bool:
        """Load the parent archive's files into the table; False when there is none."""
        entry = (self.repo.resolve(self.opts.parent) if self.opts.parent
                 else latest_of_sources(self.repo.entries(), source_paths(sources)))
        if entry is None:
            return False
        self.parent_id = entry.id

        def parent_file(f: FileEntry) -> None:
            f.validate()  # its chunk ids may be reused
            self._table.add_parent(f)

        self.repo.manifest(entry, on_file=parent_file)  # streamed: rows go to disk
        self._table.flush_parents()
        return True


def source_paths(sources: list[str]) -> list[str]:
    """The absolute source paths an archive records (and parents are matched by)."""
    return [os.path.abspath(os.path.expanduser(s)) for s in sources]


def latest_of_sources(entries: list[ArchiveEntry], sources: list[str]) -> ArchiveEntry | None:
    """The newest archive of exactly these sources (``entries`` oldest first)."""
    want = sorted(sources)
    same = [e for e in entries if sorted(e.sources) == want]
    return same[-1] if same else None


def unchanged(old: FileEntry, new: FileEntry) -> bool:
    """A file is not read again only when path (the caller's key), size, mtime,
    ctime and inode all match: a same-size rewrite with the mtime set back still
    changes the ctime. Entries of older manifests (no ctime) never match."""
    return (old.type == FILE and new.type == FILE and old.size == new.size
            and old.mtime_ns == new.mtime_ns and old.ctime_ns == new.ctime_ns != 0
            and old.ino == new.ino)
