"""Archives in the user server: the engine runs here, next to the user's files,
as background tasks that outlive kernel restarts. Finished archives are
registered in the lens service's catalog, which meters their storage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_ext.archive.engine import ArchiveEngine
from jupyter_ext.archive.errors import ArchiveError, NotFound
from jupyter_ext.archive.repository import Principal
from jupyter_ext.archive.tasks import Task
from jupyter_ext.constants import DEFAULT_TIER, RETRIEVAL_TIERS, STORAGE_CLASSES
from jupyter_ext.server.base import LensAPIHandler


class ArchiveTasks:
    """The server's archive engine and its running tasks (one per server process)."""

    def __init__(self, app):
        self.app = app
        target = os.environ.get("LENS_ARCHIVE_TARGET") or os.path.expanduser("~/.local/share/lens/archive")
        self.engine = ArchiveEngine(parent=app, repository=target)
        self.user = os.environ.get("JUPYTERHUB_USER") or os.environ.get("USER", "user")
        self.tasks: dict[str, Task] = {}

    @property
    def owner(self) -> str:
        return f"user:{self.user}"

    @property
    def principal(self) -> Principal:
        return Principal(self.user, ())

    def start(self, task: Task) -> Task:
        self.tasks[task.id] = task
        task.start()
        return task


def catalog_record(result: dict, repository: str, pack_size: int) -> dict | None:
    """What the lens catalog is told about a finished archive (None: nothing to register)."""
    entry = result.get("archive") or {}
    if not entry or result.get("dry_run"):
        return None
    return {
        "archive_id": entry["id"], "name": entry["name"], "storage_class": entry.get("storage_class", "STANDARD"),
        "size": entry.get("size", 0), "added_bytes": entry.get("added_bytes", 0), "files": entry.get("files", 0),
        "repository": repository,
        # storage is metered per object: the packs written, and the configured pack size
        "objects": entry.get("packs", 0), "pack_size": pack_size,
    }


def register_in_catalog(ext, result: dict, pack_size: int) -> bool:
    """Tell the lens service (its catalog meters storage). The registration is kept in the
    server's outbox first, so a service that is down gets it when it is back, once (the
    archive id is the idempotency key). Returns whether the service has it now."""
    record = catalog_record(result, os.environ.get("LENS_ARCHIVE_TARGET", ""), pack_size)
    if record is None or not ext.lens_service_url:
        return False
    key = f"archive:{record['archive_id']}"
    try:
        delivered = ext.outbox.send_sync(ext.lens_client(), "POST", "api/archives", record, key)
    except Exception as exc:  # the archive itself is done; never fail it on bookkeeping
        ext.log.error("archive %s: registration could not be kept for a retry: %s", record["archive_id"], exc)
        return False
    if not delivered:
        ext.log.warning("archive %s: the lens service did not take its registration yet; kept in %s",
                        record["archive_id"], ext.outbox_path)
    return delivered


class ArchiveHandler(LensAPIHandler):
    @property
    def archives(self) -> ArchiveTasks:
        ext = self.extensionapp
        if getattr(ext, "archive_tasks", None) is None:
            ext.archive_tasks = ArchiveTasks(ext)
        return ext.archive_tasks

    @property
    def root(self) -> Path:
        return Path(self.settings.get("server_root_dir") or os.getcwd()).resolve()

    def inside_root(self, path: str, what: str) -> str:
        if not isinstance(path, str) or not path:
            raise web.HTTPError(400, f"{what}: give a path")
        full = (self.root / os.path.expanduser(path)).resolve()
        if full != self.root and self.root not in full.parents:
            raise web.HTTPError(400, f"{what}: {path!r} is outside your files ({self.root})")
        return str(full)

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "The request body must be JSON.") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        return data

    def fail(self, exc: ArchiveError):
        status = 404 if isinstance(exc, NotFound) else 400
        raise web.HTTPError(status, str(exc)) from None


class ArchivesHandler(ArchiveHandler):
    @web.authenticated
    @authorized
    def get(self):
        filters = {k: self.get_argument(k) for k in ("name", "path", "text", "since", "until") if self.get_argument(k, "")}
        try:
            found = self.archives.engine.list(owner=self.archives.owner, principal=self.archives.principal, **filters)
        except NotFound:
            found = []
        except ArchiveError as exc:
            self.fail(exc)
        self.finish(json.dumps({"archives": found}, default=str))

    @web.authenticated
    @authorized
    def post(self):
        data = self.body()
        paths = data.get("paths")
        if not isinstance(paths, list) or not paths:
            raise web.HTTPError(400, "paths: give a list of files or directories")
        paths = [self.inside_root(p, "paths") for p in paths]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise web.HTTPError(400, f"paths: no such file or directory: {', '.join(missing)}")
        name = data.get("name") or Path(paths[0]).name
        storage_class = data.get("storage_class") or None
        if storage_class is not None and storage_class not in STORAGE_CLASSES:
            raise web.HTTPError(400, f"storage_class must be one of {', '.join(STORAGE_CLASSES)}")
        tags = data.get("tags") or {}
        if not isinstance(tags, dict):
            raise web.HTTPError(400, "tags must be an object of strings")
        parent = data.get("parent") or ""
        if not isinstance(parent, str) or len(parent) > 200:
            raise web.HTTPError(400, "parent: give an archive id or name")
        # the parent is looked up in this owner's repository only
        kwargs = dict(owner=self.archives.owner, principal=self.archives.principal, name=name,
                      tags={str(k): str(v) for k, v in tags.items()}, storage_class=storage_class,
                      parent=parent)
        engine = self.archives.engine
        if data.get("dry_run"):
            try:
                self.finish(json.dumps(engine.create(paths, dry_run=True, **kwargs), default=str))
            except ArchiveError as exc:
                self.fail(exc)
            return

        def create_and_register(paths, progress=None, cancel=None, **kw):
            result = engine.create(paths, progress=progress, cancel=cancel, **kw)
            register_in_catalog(self.extensionapp, result, engine.pack_size)
            return result

        task = self.archives.start(Task("archive", create_and_register, paths, **kwargs))
        self.set_status(202)
        self.finish(json.dumps(task.as_dict(), default=str))


class PlanHandler(ArchiveHandler):
    @web.authenticated
    @authorized
    def post(self, ref):
        data = self.body()
        if data.get("to"):
            self.inside_root(data["to"], "to")  # refuse a bad target before any planning
        paths = data.get("paths") or None
        try:
            plan = self.archives.engine.plan(ref, paths, owner=self.archives.owner, principal=self.archives.principal)
        except ArchiveError as exc:
            self.fail(exc)
        self.finish(json.dumps(plan.as_dict(), default=str))


class RestoreHandler(ArchiveHandler):
    @web.authenticated
    @authorized
    def post(self, ref):
        data = self.body()
        target = self.inside_root(data.get("to") or ".", "to")
        tier = data.get("tier", DEFAULT_TIER)
        if tier not in RETRIEVAL_TIERS:
            raise web.HTTPError(400, f"tier must be one of {', '.join(RETRIEVAL_TIERS)}")
        paths = data.get("paths") or None
        engine = self.archives.engine
        task = self.archives.start(Task(
            "restore", engine.restore, ref, paths, target=target, owner=self.archives.owner,
            principal=self.archives.principal, tier=tier, overwrite=bool(data.get("overwrite")),
        ))
        self.set_status(202)
        self.finish(json.dumps(task.as_dict(), default=str))


class TaskHandler(ArchiveHandler):
    @web.authenticated
    @authorized
    def get(self, task_id=None):
        if task_id is None:
            self.finish(json.dumps({"tasks": [t.as_dict() for t in self.archives.tasks.values()]}, default=str))
            return
        task = self.archives.tasks.get(task_id)
        if task is None:
            raise web.HTTPError(404, f"No archive task {task_id!r}.")
        self.finish(json.dumps(task.as_dict(), default=str))

    @web.authenticated
    @authorized
    def delete(self, task_id):
        task = self.archives.tasks.get(task_id)
        if task is None:
            raise web.HTTPError(404, f"No archive task {task_id!r}.")
        task.cancel()
        self.finish(json.dumps(task.as_dict(), default=str))


def archive_handlers() -> list[tuple]:
    return [
        (r"/lens/api/archives/tasks/?", TaskHandler),
        (r"/lens/api/archives/tasks/([0-9a-f]{16})", TaskHandler),
        (r"/lens/api/archives/([^/]+)/plan", PlanHandler),
        (r"/lens/api/archives/([^/]+)/restore", RestoreHandler),
        (r"/lens/api/archives/?", ArchivesHandler),
    ]
