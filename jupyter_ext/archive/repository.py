"""A repository: one owner's (user or group) key prefix in a store.

Layout under ``users/<name>/`` or ``groups/<name>/``::

    config                 hot   chunker parameters (fixed for dedup)
    data/<aa>/<pack-id>    cold  packs of zstd/raw blobs, in the chosen storage class
    index/<pack-id>        hot   the chunks of one pack (written after the pack)
    manifests/<id>         hot   archive manifests (written after all packs)
    archives/<id>          hot   index entries; written last, they make an archive visible
    restores/<id>          hot   persisted restore state (resumable)

Access goes through ``Repository.open(store, owner, principal)``, which refuses
a principal that is not the owner (or a member of the owning group).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .chunkindex import ChunkIndex
from .chunks import ChunkerParams
from .errors import AccessDenied, ConfigError, IntegrityError, NotFound
from .manifest import HEX64, ArchiveEntry, Manifest
from .zjson import LIST_START, MAX_INDEX_BYTES, dumps, iter_object, loads

INDEX_PAGE = 1000  # chunk rows indexed per statement
INDEX_BYTES_PER_CHUNK = 32  # a stored pack index takes ~40 per chunk: this overestimates

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
HOT = "STANDARD"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user with groups. ``admin`` may open any repository."""

    user: str
    groups: tuple = ()
    admin: bool = False


@dataclass(frozen=True)
class Owner:
    kind: str  # "user" | "group"
    name: str

    @classmethod
    def parse(cls, text: str) -> Owner:
        kind, sep, name = text.partition(":")
        if not sep:
            kind, name = "user", text
        if kind not in ("user", "group"):
            raise ConfigError(f"owner: kind {kind!r} is not 'user' or 'group'")
        if not NAME.match(name):
            raise ConfigError(f"owner: {name!r} is not a valid name ([A-Za-z0-9._@-], 1-64)")
        return cls(kind, name)

    @property
    def prefix(self) -> str:
        return f"{self.kind}s/{self.name}/"

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def allows(self, who: Principal) -> bool:
        if who.admin:
            return True
        if self.kind == "user":
            return who.user == self.name
        return self.name in who.groups


@dataclass(frozen=True, slots=True)  # one per chunk in the index: slots keep it small
class Location:
    pack: str
    offset: int
    length: int
    raw_len: int


@dataclass
class PackIndex:
    pack: str
    size: int
    storage_class: str
    chunks: list = field(default_factory=list)  # [hex id, offset, length, raw_len]

    def to_bytes(self) -> bytes:
        doc = {"pack": self.pack, "size": self.size, "class": self.storage_class,
               "chunks": self.chunks}
        return dumps(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> PackIndex:
        doc = loads(data, MAX_INDEX_BYTES, "pack index")
        try:
            return cls(doc["pack"], doc["size"], doc["class"], doc["chunks"])
        except (TypeError, KeyError) as exc:
            raise IntegrityError(f"pack index does not decode: {exc}") from None


def check_id(text: str, what: str = "archive id") -> str:
    if not HEX64.match(text or ""):
        raise NotFound(f"{what} {text!r} not found")
    return text


class Repository:
    """One owner's archives. Thread-safe for concurrent writers of different packs."""

    def __init__(self, store, owner: Owner, params: ChunkerParams, cache_dir: str = ""):
        self.store = store
        self.cache_dir = cache_dir
        self.owner = owner
        self.params = params
        self.prefix = owner.prefix
        self._lock = threading.Lock()
        # chunk id -> (pack number, offset, length, raw length), on local disk (a dict
        # cost ~160 bytes a chunk: memory grew with the repository); packs by number
        self._index: ChunkIndex | None = None
        self._pack_ids: list[str] = []
        self._pack_no: dict[str, int] = {}
        self._packs: dict[str, PackIndex] = {}

    # -- opening ---------------------------------------------------------------
    @classmethod
    def open(cls, store, owner: str | Owner, principal: Principal,
             params: ChunkerParams | None = None, create: bool = True,
             cache_dir: str = "") -> Repository:
        owner = owner if isinstance(owner, Owner) else Owner.parse(owner)
        if not owner.allows(principal):
            raise AccessDenied(f"{principal.user} may not use the repository of {owner}")
        key = owner.prefix + "config"
        try:
            doc = json.loads(store.get(key))
            stored = ChunkerParams(**doc["chunker"])
        except NotFound:
            if not create:
                raise NotFound(f"no archive repository for {owner}") from None
            stored = (params or ChunkerParams()).validate()
            doc = {"version": 1, "owner": str(owner), "chunker": stored.as_dict()}
            store.put(key, json.dumps(doc).encode(), storage_class=HOT)
        return cls(store, owner, stored, cache_dir)

    def key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    @staticmethod
    def pack_key_rel(pack: str) -> str:
        return f"data/{pack[:2]}/{pack}"

    def pack_key(self, pack: str) -> str:
        return self.prefix + self.pack_key_rel(pack)

    # -- chunk index -------------------------------------------------------------
    def load_index(self, workers: int = 8, filtered: bool = True) -> None:
        """Index every pack's chunks. ``filtered=False`` (a restore): no Bloom filter,
        for lookups that all hit."""
        if self._index is not None:
            return
        with self._lock:  # one loader; other threads wait for it
            if self._index is not None:
                return
            self._load_index_locked(workers, filtered)

    def _load_index_locked(self, workers: int, filtered: bool) -> None:
        objects = list(self.store.list(self.key("index/")))
        keys = [o.key for o in objects]
        if self.store.spools:
            workers = 1  # local files: threads add malloc arenas (memory), not speed

        def fetch(k):
            """(key, the pack index's bytes, whether they came from the local cache)."""
            cached = self._cache_path(k)
            if cached and os.path.exists(cached):
                try:
                    with open(cached, "rb") as f:
                        return k, f.read(), True
                except OSError:
                    pass
            data = self.store.get(k)
            if cached:
                self._cache_put(cached, data)
            return k, data, False

        # the index's Bloom filter sized once for all of it (never rebuilt here)
        index = ChunkIndex(expected=sum(o.size for o in objects) // INDEX_BYTES_PER_CHUNK,
                           filtered=filtered)
        with ThreadPoolExecutor(max(1, min(workers, len(keys) or 1))) as pool:
            # a bounded window of fetches: pack indexes do not pile up ahead of the
            # indexing, and each is dropped once indexed
            window: deque = deque()
            for k in keys:
                window.append(pool.submit(fetch, k))
                if len(window) >= 2 * workers:
                    self._index_fetched(*window.popleft().result(), index)
            while window:
                self._index_fetched(*window.popleft().result(), index)
        self._index = index

    def _index_fetched(self, key: str, data: bytes, from_cache: bool, index: ChunkIndex) -> None:
        pid = key.rsplit("/", 1)[-1]
        try:
            self._index_streamed(pid, data, index)
        except IntegrityError:
            if not from_cache:
                raise
            data = self.store.get(key)  # a damaged or foreign cache entry: the store's copy
            self._cache_put(self._cache_path(key), data)
            self._index_streamed(pid, data, index)

    def _index_streamed(self, pid: str, data: bytes, index: ChunkIndex) -> None:
        """Index a stored pack index row by row: a pack of many small chunks (~40,000
        a pack of small files) never exists as one parsed list."""
        head: dict = {}
        rows: list = []
        no = self._pack_number(pid)
        try:
            for key, value in iter_object(data, MAX_INDEX_BYTES, "pack index", "chunks"):
                if key != "chunks":
                    head[key] = value
                elif value is not LIST_START:
                    try:
                        cid, off, length, raw = value
                        rows.append((bytes.fromhex(cid), no, off, length, raw))
                    except (TypeError, ValueError):
                        raise IntegrityError(f"pack index {pid[:16]}: malformed row") from None
                    if len(rows) >= INDEX_PAGE:
                        index.add(rows)
                        rows = []
            index.add(rows)
            # the name comes after the rows (keys are sorted): a pack index naming
            # another pack takes its rows back out
            if head.get("pack") != pid:
                raise IntegrityError(f"pack index {pid[:16]} names another pack")
            self._packs[pid] = PackIndex(pid, head["size"], head["class"], [])
        except (IntegrityError, KeyError) as exc:
            index.drop_pack(no)
            if isinstance(exc, KeyError):
                raise IntegrityError(f"pack index does not decode: {exc}") from None
            raise

    def _pack_number(self, pack: str) -> int:
        no = self._pack_no.get(pack)
        if no is None:
            no = self._pack_no[pack] = len(self._pack_ids)
            self._pack_ids.append(pack)
        return no

    def _add_locked(self, pi: PackIndex, index: ChunkIndex) -> None:
        """Index a pack's chunks (caller holds the lock); the chunk list is not kept."""
        no = self._pack_number(pi.pack)
        index.add((bytes.fromhex(cid), no, off, ln, raw) for cid, off, ln, raw in pi.chunks)
        self._packs[pi.pack] = PackIndex(pi.pack, pi.size, pi.storage_class, [])

    def _cache_path(self, key: str) -> str:
        """Pack indexes are immutable: remote ones are cached on local disk."""
        if not self.cache_dir:
            return ""
        import blake3

        tag = blake3.blake3(self.store.url.encode()).hexdigest()[:16]
        return os.path.join(self.cache_dir, tag, *key.split("/"))

    @staticmethod
    def _cache_put(path: str, data: bytes) -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation only

    @property
    def packs(self) -> dict[str, PackIndex]:
        self.load_index()
        return self._packs

    def locate(self, cid: bytes) -> Location | None:
        self.load_index()
        row = self._index.get(cid)
        if row is None:
            return None
        return Location(self._pack_ids[row[0]], row[1], row[2], row[3])

    def spool(self):
        """A callable giving a temp file (fd, path) to build a pack in, or None when
        the store builds objects in memory (see ``Store.spool``)."""
        if not self.store.spools:
            return None
        return lambda: self.store.spool(self.prefix)

    def locate_many(self, cids) -> dict:
        """{chunk id: Location} for the ids of ``cids`` that are indexed (batched)."""
        self.load_index()
        ids = self._pack_ids
        return {cid: Location(ids[r[0]], r[1], r[2], r[3])
                for cid, r in self._index.get_many(cids).items()}

    def missing(self, cids) -> set:
        """The chunk ids of ``cids`` that are not indexed (batched)."""
        self.load_index()
        return self._index.missing(cids)

    def add_pack(self, pack, pack_id: str, chunks: list, storage_class: str,
                 size: int | None = None) -> None:
        """Store a pack (bytes, or the path of a spooled file) in its class, then its
        hot index: only then are its chunks known."""
        tags = {"lens-kind": "data"}
        if isinstance(pack, str) and not self.store.spools:
            # a pack a reader process built in a private temp file: read back
            path = pack
            try:
                with open(path, "rb") as f:
                    pack = f.read()
            finally:
                os.unlink(path)
        if isinstance(pack, str):
            self.store.put_file(self.pack_key(pack_id), pack, storage_class=storage_class,
                                tags=tags)
        else:
            size = len(pack)
            self.store.put(self.pack_key(pack_id), pack, storage_class=storage_class,
                           tags=tags)
        pi = PackIndex(pack_id, size, storage_class, chunks)
        self.store.put(self.key("index", pack_id), pi.to_bytes(), storage_class=HOT)
        self.load_index()
        with self._lock:
            self._add_locked(pi, self._index)

    # -- archives ----------------------------------------------------------------
    def put_manifest(self, manifest: Manifest, validate: bool = False) -> tuple[str, int]:
        """Store a manifest; (its id, its stored size). A local repository builds it
        in a temp file as it is encoded (a manifest of 100,000 files is megabytes);
        other stores get it in one ``put``."""
        import blake3

        if not self.store.spools:
            data = manifest.to_bytes(validate)
            mid = blake3.blake3(data).hexdigest()
            self.store.put(self.key("manifests", mid), data, storage_class=HOT)
            return mid, len(data)
        fd, path = self.store.spool(self.key("manifests/"))
        hasher, size = blake3.blake3(), 0
        try:
            with open(fd, "wb") as f:  # a buffered write takes all it is given

                def write(piece) -> None:
                    nonlocal size
                    f.write(piece)
                    hasher.update(piece)
                    size += len(piece)

                manifest.write(write, validate)
            mid = hasher.hexdigest()
            self.store.put_file(self.key("manifests", mid), path, storage_class=HOT)
        except BaseException:
            if os.path.exists(path):
                os.unlink(path)
            raise
        return mid, size

    def publish(self, entry: ArchiveEntry) -> None:
        """Write the index entry last: from now on the archive is visible."""
        self.store.put(self.key("archives", entry.id), entry.to_bytes(), storage_class=HOT)

    def entries(self) -> list[ArchiveEntry]:
        out = []
        for obj in self.store.list(self.key("archives/")):
            out.append(ArchiveEntry.from_bytes(self.store.get(obj.key)))
        out.sort(key=lambda e: (e.created, e.id))
        return out

    def resolve(self, ref: str) -> ArchiveEntry:
        """An archive by full id, unique id prefix (>= 6 hex) or name (latest wins)."""
        entries = self.entries()
        if ref and re.fullmatch(r"[0-9a-f]{6,64}", ref):
            hits = [e for e in entries if e.id.startswith(ref)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise ConfigError(f"archive: id prefix {ref!r} is ambiguous")
        named = [e for e in entries if e.name == ref]
        if named:
            return named[-1]
        raise NotFound(f"archive {ref!r} not found for {self.owner}")

    def manifest(self, entry_or_id, on_file=None) -> Manifest:
        """The manifest, validated; with ``on_file`` its files are handed to that
        callable one by one instead of being kept (``Manifest.from_bytes``)."""
        with self.open_manifest(entry_or_id) as f:  # read as it is parsed
            return Manifest.from_bytes(f, on_file).validate()

    def open_manifest(self, entry_or_id):
        """A binary file object reading the stored manifest (close it)."""
        mid = entry_or_id.manifest if isinstance(entry_or_id, ArchiveEntry) else entry_or_id
        check_id(mid, "manifest")
        return self.store.open(self.key("manifests", mid))

    def search(self, name: str | None = None, tags: dict | None = None,
               since: str | None = None, until: str | None = None,
               path: str | None = None, text: str | None = None) -> list[ArchiveEntry]:
        """Filter archives by name glob, tags, ISO date range, path glob, free text."""
        out = []
        for e in self.entries():
            if name and not fnmatch.fnmatchcase(e.name, name):
                continue
            if tags and any(e.tags.get(k) != v for k, v in tags.items()):
                continue
            if since and e.created < since:
                continue
            if until and e.created[:len(until)] > until:
                continue
            if text and text.lower() not in json.dumps(
                    [e.name, e.tags, e.meta, e.sources]).lower():
                continue
            if path and not any(fnmatch.fnmatchcase(f.path, path)
                                for f in self.manifest(e).files):
                continue
            out.append(e)
        return out

    # -- restore state -----------------------------------------------------------
    def save_state(self, rid: str, state: dict) -> None:
        self.store.put(self.key("restores", rid), json.dumps(state).encode(), storage_class=HOT)

    def load_state(self, rid: str) -> dict | None:
        try:
            return json.loads(self.store.get(self.key("restores", rid)))
        except NotFound:
            return None

    def restores(self) -> list[dict]:
        return [json.loads(self.store.get(o.key))
                for o in self.store.list(self.key("restores/"))]
