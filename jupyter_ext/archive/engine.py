"""The archive engine API used by the CLI, and later by the server extension's
background tasks and the lens service.

Everything is synchronous and thread-friendly: run it in a worker thread (for
example ``await asyncio.to_thread(engine.create, ...)``), pass ``progress=`` to
receive ``Progress`` snapshots (bytes, files, dedup ratio, MB/s, ETA) and
``cancel=threading.Event()`` to stop it. Cancelling or killing an archive run
leaves the repository consistent; running it again resumes.
"""

from __future__ import annotations

import os

from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import Configurable

from ..constants import DEFAULT_PACK_SIZE, DEFAULT_TIER, STORAGE_CLASSES
from ..costs.catalog import PriceCatalog, process_catalog
from . import lifecycle, pricing
from .archiver import ArchiveOptions, Archiver
from .check import CheckReport, check_repository
from .chunks import ChunkerParams
from .errors import ConfigError, NotFound
from .memory import tune_malloc
from .progress import Reporter
from .repository import Principal, Repository
from .restore import WRITERS_FROM, Restorer, plan_restore
from .stores.open import open_store


def parse_pairs(items, field: str) -> dict:
    """``["k=v", ...]`` -> dict, naming ``field`` in the error."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{field}: {item!r} is not KEY=VALUE")
        out[key.strip()] = value
    return out


class ArchiveEngine(Configurable):
    repository = Unicode(
        os.path.expanduser("~/.local/share/lens/archive"),
        help="Archive store: a directory, or s3://bucket/prefix.").tag(config=True)
    storage_class = Unicode(
        "STANDARD",
        help="Default storage class of data packs: " + ", ".join(STORAGE_CLASSES),
    ).tag(config=True)
    zstd_level = Integer(3, help="zstd level for chunks (0 stores raw; negative levels are "
                         "faster). At 3 or below, chunks whose samples shrink little (float "
                         "fields, noisy binary data) get level 1: level 3 finds nothing more "
                         "there."
                         ).tag(config=True)
    pack_size = Integer(DEFAULT_PACK_SIZE, help="Target size of a pack object in bytes "
                        "(the lens service meters stored objects by the packs written).").tag(
        config=True)
    chunk_avg_size = Integer(1024 * 1024, help="FastCDC average chunk size of new "
                             "repositories (min = avg/4, max = avg*4).").tag(config=True)
    workers = Integer(max(1, os.cpu_count() or 1),
                      help="Threads that chunk, hash and compress.").tag(config=True)
    upload_workers = Integer(4, help="Concurrent pack uploads.").tag(config=True)
    reader_processes = Integer(
        (os.cpu_count() or 1) if (os.cpu_count() or 1) >= 2 else 0,
        help="Processes that read, hash and compress small files (under the chunker's "
             "minimum) of archives with many of them; threads only contend for the GIL "
             "there. 0 reads them in a thread.").tag(config=True)
    restore_range = Integer(0, help="Bytes a restore reads (and decodes) at once per job; "
                            "0: 1 MiB from a local repository, 4 MiB from S3 (fewer "
                            "requests). Reads in flight are most of a restore's memory.").tag(
        config=True)
    restore_processes = Integer(
        2 if (os.cpu_count() or 1) >= 2 else 0,
        help="Processes that write the small files of a restore from a local repository "
             "(four system calls a file: threads hand the GIL around at each). 0 writes "
             "them in threads.").tag(config=True)
    restore_processes_from = Integer(
        WRITERS_FROM, help="Writer processes start only for restores of at least this "
        "many small files.").tag(config=True)
    readers_from = Integer(2000, help="Reader processes start (about 0.1 s) only for "
                           "archives with at least this many small files.").tag(config=True)
    sse = Unicode("", help="S3 server-side encryption: '', 'AES256' or 'aws:kms'.").tag(
        config=True)
    kms_key_id = Unicode("", help="KMS key id for sse='aws:kms'.").tag(config=True)
    endpoint_url = Unicode("", help="S3 endpoint URL (default: AWS, or AWS_ENDPOINT_URL).").tag(
        config=True)
    multipart_threshold = Integer(16 * 1024 * 1024, help="S3 multipart above this size.").tag(
        config=True)
    multipart_chunksize = Integer(8 * 1024 * 1024, help="S3 multipart part size.").tag(
        config=True)
    restore_days = Integer(7, help="Days a thawed Glacier copy stays readable.").tag(
        config=True)
    poll_interval = Float(60.0, help="Seconds between x-amz-restore polls.").tag(config=True)
    cache_dir = Unicode(
        os.path.expanduser("~/.cache/lens/archive"),
        help="Local cache of (immutable) pack indexes of remote repositories; '' disables."
    ).tag(config=True)
    local_fsync = Bool(True, help="fsync local objects before the rename.").tag(config=True)
    prices_file = Unicode(
        "", help="Price snapshot for cost estimates; empty: $LENS_PRICES_FILE, else the "
        "refreshed snapshot in $LENS_STATE_DIR, else the one shipped with lens.").tag(config=True)
    prices_region = Unicode("us-east-1", help="AWS region whose prices estimates use.").tag(
        config=True)

    def __init__(self, prices: PriceCatalog | None = None, **kwargs):
        """``prices``: the process's price catalog (default: loaded from ``prices_file``)."""
        super().__init__(**kwargs)
        self.prices = prices or process_catalog(self.prices_file or None, self.prices_region)
        self._store = None

    # -- plumbing ---------------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            opts = {}
            if self.repository.startswith("s3://"):
                opts = {"sse": self.sse, "kms_key_id": self.kms_key_id,
                        "endpoint_url": self.endpoint_url or None,
                        "multipart_threshold": self.multipart_threshold,
                        "multipart_chunksize": self.multipart_chunksize,
                        "concurrency": self.upload_workers}
            self._store = open_store(self.repository, **opts)
            if hasattr(self._store, "fsync"):
                self._store.fsync = self.local_fsync
        return self._store

    def repo(self, owner: str, principal: Principal, create: bool = True) -> Repository:
        avg = self.chunk_avg_size
        params = ChunkerParams(max(64, avg // 4), avg, avg * 4)
        cache = self.cache_dir if self.repository.startswith("s3://") else ""
        return Repository.open(self.store, owner, principal, params, create=create,
                               cache_dir=cache)

    # -- operations ---------------------------------------------------------------
    def create(self, paths: list[str], *, owner: str, principal: Principal, name: str,
               tags: dict | None = None, meta: dict | None = None,
               storage_class: str | None = None, dry_run: bool = False, parent: str = "",
               progress=None, cancel=None, after_scan=None) -> dict:
        """Archive ``paths``. Returns a summary; with ``dry_run`` also the cost table.
        Unchanged files are taken from ``parent`` (an archive id or name), by default
        the latest archive of the same paths whatever its name.
        ``after_scan`` is passed to :class:`Archiver` (a hook between scan and reads)."""
        if not paths:
            raise ConfigError("paths: give at least one file or directory")
        tune_malloc()
        opts = ArchiveOptions(
            name=name, tags=tags or {}, meta=meta or {},
            storage_class=storage_class or self.storage_class, level=self.zstd_level,
            pack_size=self.pack_size, workers=self.workers,
            readers=self.reader_processes if self.workers >= 2 else 0,
            readers_from=self.readers_from,
            # a local disk gains nothing from more writers (and each waiting pack is
            # pack_size of memory); S3 gains from concurrency
            upload_workers=(self.upload_workers if self.repository.startswith("s3://")
                            else 1),
            dry_run=dry_run, parent=parent or "")
        repo = self.repo(owner, principal)
        archiver = Archiver(repo, opts, Reporter(progress, cancel), after_scan=after_scan)
        entry, manifest, prog = archiver.run(paths)
        result = {"archive": entry.as_dict() if entry else None,
                  "progress": prog.as_dict(), "dry_run": dry_run,
                  "skipped": list(manifest.stats.get("skipped", [])),
                  # the archive unchanged files were taken from, and how many
                  "parent": archiver.parent_id, "unchanged_files": archiver.unchanged_files}
        if dry_run:
            hot = [archiver.manifest_size, 4096, 4096]
            result["costs"] = pricing.cost_table(archiver.pack_sizes, hot, self.prices)
            existing = [p.size for p in repo.packs.values()]
            result["repository_costs"] = pricing.cost_table(
                existing + archiver.pack_sizes, hot, self.prices)
        return result

    def estimate(self, paths, **kwargs) -> dict:
        return self.create(paths, dry_run=True, **kwargs)

    def list(self, *, owner: str, principal: Principal, **filters) -> list[dict]:
        """Archives of ``owner`` matching ``name`` (glob), ``tags``, ``since``/``until``
        (ISO dates), ``path`` (glob over manifest paths) and ``text``."""
        try:
            repo = self.repo(owner, principal, create=False)
        except NotFound:
            return []  # no repository yet: nothing archived
        return [e.as_dict() for e in repo.search(**filters)]

    def show(self, ref: str, *, owner: str, principal: Principal) -> dict:
        repo = self.repo(owner, principal, create=False)
        entry = repo.resolve(ref)
        m = repo.manifest(entry)
        return {"archive": entry.as_dict(), "files": [f.to_json() for f in m.files],
                "stats": m.stats}

    def plan(self, ref: str, paths=None, *, owner: str, principal: Principal):
        tune_malloc()  # the plan streams the manifest and pack indexes too
        repo = self.repo(owner, principal, create=False)
        return plan_restore(repo, ref, paths, self.prices)

    def restore(self, ref: str, paths=None, *, target: str, owner: str,
                principal: Principal, tier: str = DEFAULT_TIER, overwrite: bool = False,
                wait: bool = True, timeout: float | None = None, progress=None,
                cancel=None, plan=None) -> dict:
        """Restore (or resume restoring). With ``wait=False`` returns once thaws are
        requested; call again later, it picks up the persisted state. ``plan``: the
        result of ``self.plan`` for the same archive and paths (not made twice)."""
        tune_malloc()
        repo = self.repo(owner, principal, create=False)
        if plan is None or plan.paths != sorted(paths or []):
            plan = plan_restore(repo, ref, paths, self.prices)
        r = Restorer(repo, plan, target, tier=tier, overwrite=overwrite,
                     days=self.restore_days, poll_interval=self.poll_interval,
                     timeout=timeout, workers=max(2, self.upload_workers),
                     reporter=Reporter(progress, cancel), max_range=self.restore_range,
                     writer_processes=self.restore_processes,
                     writers_from=self.restore_processes_from)
        state = r.run(wait=wait)
        return {"plan": plan.as_dict(), "state": state, "progress": r.rep.p.as_dict()}

    def restores(self, *, owner: str, principal: Principal) -> list[dict]:
        return self.repo(owner, principal, create=False).restores()

    def check(self, *, owner: str, principal: Principal, read_data: bool = False) -> CheckReport:
        repo = self.repo(owner, principal, create=False)
        return check_repository(repo, read_data=read_data, workers=max(2, self.workers))

    def usage(self, *, owner: str, principal: Principal) -> dict:
        """Stored objects and monthly cost per storage class, for the ledger to charge
        over time (at ``rate_usd_hour``, as ``pricing.accrued`` does). Metadata counts as
        STANDARD."""
        repo = self.repo(owner, principal, create=False)
        by_class: dict[str, list[int]] = {}
        for pi in repo.packs.values():
            by_class.setdefault(pi.storage_class, []).append(pi.size)
        hot = [o.size for kind in ("index/", "manifests/", "archives/", "config")
               for o in self.store.list(repo.key(kind))]
        by_class.setdefault("STANDARD", []).extend(hot)
        out = {}
        for cls, sizes in by_class.items():
            c = pricing.storage_cost(sizes, cls if cls in STORAGE_CLASSES
                                     else "STANDARD", self.prices)
            out[cls] = {"objects": c.objects, "bytes": c.stored_bytes,
                        "rate_usd_hour": str(c.rate_usd_hour), "monthly_micro": c.monthly}
        return {"owner": str(repo.owner), "classes": out,
                "monthly_micro": sum(v["monthly_micro"] for v in out.values())}

    def apply_lifecycle(self, template: str) -> list[dict]:
        return lifecycle.apply(self.store, template)
