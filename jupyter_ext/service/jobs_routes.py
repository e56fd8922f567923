"""atom jobs in the lens service: estimate -> budget hold -> submit, owned per user.

Users hold no scheduler or AWS credentials: the service submits on their
behalf, so the budget cannot be bypassed. Another user's job id is a 404.
"""

from __future__ import annotations

import os

from tornado import web
from traitlets.config import Config

from ..atom.errors import BackendError, JobNotFound, SpecError, UnknownUser
from ..atom.settings import AtomSettings
from ..costs.ledger import BudgetExceeded
from .base import LensHandler

JOB_ID = r"(j-[A-Za-z0-9_-]{1,64})"


def setup(lens, prefix: str) -> list[tuple]:
    config = Config(lens.config)
    state = os.environ.get("LENS_STATE_DIR", "state")
    if not config.LocalBackend.get("state_dir"):
        config.LocalBackend.state_dir = os.path.join(os.path.abspath(state), "atom-local")
    if not config.SlurmBackend.get("state_dir"):
        config.SlurmBackend.state_dir = os.path.join(os.path.abspath(state), "atom-slurm")
    settings = AtomSettings(config=config, log=lens.log)
    lens.jobs = settings.build_manager(lens.costs.ledger.engine, lens.costs.ledger,
                                       prices=lens.costs.catalog)
    lens.add_startup(lens.jobs.start)
    lens.add_periodic(settings.refresh_interval, lens.jobs.refresh)
    return [
        (rf"{prefix}api/jobs/apps", AppsHandler),
        (rf"{prefix}api/jobs/estimate", EstimateHandler),
        (rf"{prefix}api/jobs/{JOB_ID}/logs", JobLogsHandler),
        (rf"{prefix}api/jobs/{JOB_ID}", JobHandler),
        (rf"{prefix}api/jobs/?", JobsHandler),
    ]


class JobsBase(LensHandler):
    @property
    def jobs(self):
        return self.lens.jobs

    def caller(self) -> str:
        """Jobs belong to users; admins may act for ?user=NAME."""
        who = self.require_identity()
        target = self.get_argument("user", "")
        if target and target != who.get("name"):
            if not self.is_admin:
                raise web.HTTPError(403, "Only admins may act on another user's jobs.")
            return target
        if who.get("kind") != "user":
            raise web.HTTPError(403, "Jobs belong to users; give ?user=NAME as an admin.")
        return who["name"]

    def _translate(self, exc: Exception):
        if isinstance(exc, SpecError | UnknownUser):
            raise web.HTTPError(400, str(exc)) from None
        if isinstance(exc, JobNotFound):
            raise web.HTTPError(404, str(exc).strip("'\"")) from None
        if isinstance(exc, BudgetExceeded):
            raise web.HTTPError(403, exc.message) from None
        if isinstance(exc, BackendError):
            raise web.HTTPError(502, f"The job backend failed: {exc}") from None
        raise exc


def _spec_from(body: dict) -> dict:
    spec = body.get("spec", body)
    if not isinstance(spec, dict):
        raise web.HTTPError(400, "spec must be a JSON object")
    return spec


class JobsHandler(JobsBase):
    async def get(self):
        user = self.caller()
        records = self.jobs.list(user)
        ids = self.get_argument("ids", "")
        if ids:
            wanted = set(ids.split(","))
            records = [r for r in records if r["id"] in wanted]
        self.write_json({"jobs": records})

    async def post(self):
        user = self.caller()
        spec = _spec_from(self.json_body())
        groups = await self.lens.costs.groups_of(user)
        try:
            record = await self.jobs.submit(user, groups, spec)
        except Exception as exc:  # translated to 4xx/5xx below
            self._translate(exc)
        self.write_json(record, status=201)


class EstimateHandler(JobsBase):
    async def post(self):
        self.caller()
        try:
            self.write_json(self.jobs.estimate(_spec_from(self.json_body())))
        except SpecError as exc:
            self._translate(exc)


class AppsHandler(JobsBase):
    async def get(self):
        self.require_identity()
        self.write_json({"apps": self.jobs.apps()})


class JobHandler(JobsBase):
    async def get(self, job_id):
        user = self.caller()
        try:
            self.write_json(self.jobs.get(user, job_id))
        except JobNotFound as exc:
            self._translate(exc)

    async def delete(self, job_id):
        user = self.caller()
        try:
            self.write_json(await self.jobs.cancel(user, job_id))
        except Exception as exc:
            self._translate(exc)


class JobLogsHandler(JobsBase):
    async def get(self, job_id):
        user = self.caller()
        tail = self.get_argument("tail", "")
        index = self.get_argument("index", "")
        try:
            tail_n = int(tail) if tail else None
            index_n = int(index) if index else None
        except ValueError:
            raise web.HTTPError(400, "tail and index must be whole numbers") from None
        try:
            text = await self.jobs.logs(user, job_id, tail=tail_n, index=index_n)
        except Exception as exc:
            self._translate(exc)
        self.write_json({"id": job_id, "logs": text})
