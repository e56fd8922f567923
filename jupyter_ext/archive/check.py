"""Repository verification: structure always, every byte with ``read_data``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import blake3

from .blobs import decode
from .errors import ArchiveError, IntegrityError, NotFound, ObjectArchived
from .manifest import FILE
from .repository import PackIndex, Repository


@dataclass
class CheckReport:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    archives: int = 0
    packs: int = 0
    chunks: int = 0
    packs_read: int = 0
    packs_skipped_cold: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings,
                "archives": self.archives, "packs": self.packs, "chunks": self.chunks,
                "packs_read": self.packs_read, "packs_skipped_cold": self.packs_skipped_cold}


def check_repository(repo: Repository, read_data: bool = False, workers: int = 4) -> CheckReport:
    rep = CheckReport()
    store = repo.store
    data = {o.key[len(repo.prefix) + len("data/xx/"):]: o
            for o in store.list(repo.key("data/"))}
    indexes: dict[str, PackIndex] = {}
    for o in store.list(repo.key("index/")):
        pid = o.key.rsplit("/", 1)[-1]
        try:
            indexes[pid] = PackIndex.from_bytes(store.get(o.key))
        except ArchiveError as exc:
            rep.errors.append(f"index {pid[:16]}: {exc}")
    known: set[str] = set()
    for pid, pi in indexes.items():
        obj = data.get(pid)
        if obj is None:
            rep.errors.append(f"pack {pid[:16]}: indexed but missing from the store")
        elif obj.size != pi.size:
            rep.errors.append(f"pack {pid[:16]}: size {obj.size} != indexed {pi.size}")
        known.update(c[0] for c in pi.chunks)
    for pid in data.keys() - indexes.keys():
        rep.warnings.append(f"pack {pid[:16]}: not indexed (left by an interrupted run; unused)")
    if hasattr(store, "temp_files"):
        for path in store.temp_files(repo.prefix.rstrip("/")):
            rep.warnings.append(f"temporary file {path} left by an interrupted write")
    rep.packs, rep.chunks = len(indexes), len(known)
    manifests_used = set()
    try:
        entries = repo.entries()
    except ArchiveError as exc:
        rep.errors.append(f"archive entries: {exc}")
        entries = []
    for e in entries:
        rep.archives += 1
        manifests_used.add(e.manifest)
        try:
            m = repo.manifest(e)
        except ArchiveError as exc:
            rep.errors.append(f"archive {e.name} ({e.id[:12]}): manifest: {exc}")
            continue
        for f in m.files:
            if f.type == FILE:
                missing = [h for h in f.chunks if h not in known]
                if missing:
                    rep.errors.append(f"archive {e.name} ({e.id[:12]}): {f.path}: "
                                      f"{len(missing)} chunk(s) missing")
    for o in store.list(repo.key("manifests/")):
        if o.key.rsplit("/", 1)[-1] not in manifests_used:
            rep.warnings.append(f"manifest {o.key.rsplit('/', 1)[-1][:16]}: not published "
                                "(interrupted run; harmless)")
    if read_data:
        def verify(pid: str):
            pi = indexes[pid]
            try:
                blob = store.get(repo.pack_key(pid))
            except ObjectArchived:
                return "cold", []
            except NotFound:
                return "missing", []
            errs = []
            if blake3.blake3(blob).hexdigest() != pid:
                errs.append(f"pack {pid[:16]}: content hash does not match its id")
            for cid, off, ln, raw in pi.chunks:
                try:
                    decode(blob[off:off + ln], bytes.fromhex(cid), raw)
                except IntegrityError as exc:
                    errs.append(f"pack {pid[:16]}: chunk {cid[:16]}: {exc}")
            return "read", errs

        with ThreadPoolExecutor(workers) as pool:
            for status, errs in pool.map(verify, [p for p in indexes if p in data]):
                if status == "cold":
                    rep.packs_skipped_cold += 1
                elif status == "read":
                    rep.packs_read += 1
                rep.errors.extend(errs)
        if rep.packs_skipped_cold:
            rep.warnings.append(f"{rep.packs_skipped_cold} cold pack(s) not read; "
                                "thaw them to verify their bytes")
    return rep
