"""JobManager: the lens service's job broker (estimate -> hold -> submit -> track -> charge).

State machine of a job record (persisted in ``atom_jobs``)::

    HELD --submit ok--> PENDING -> RUNNING -> SUCCEEDED | FAILED | CANCELLED | LOST
      \\--submit failed--> REJECTED (hold released)

Money: the hold covers the worst case (walltime x nodes x array size x rate). When a job
reaches a terminal state the actual cost (runtime summed over array members x nodes x
rate) is charged and the ledger refunds the rest of the hold.

Ownership: every lookup is by (user, job id); another user's id is ``JobNotFound``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..constants import JOBS
from .backends.base import (
    ACTIVE_STATES,
    LOST,
    TERMINAL_STATES,
    Backend,
    BackendStatus,
    JobRef,
    Submission,
)
from .errors import AtomError, BackendError, JobNotFound, SpecError
from .estimate import actual_cost
from .estimate import estimate as estimate_spec
from .ledger import LedgerProtocol
from .spec import MAX_ARRAY, MAX_SPEC_BYTES, JobSpec, job_env, job_tags, parse_spec
from .store import JobStore

HELD, REJECTED = "HELD", "REJECTED"
LEDGER_CATEGORY = JOBS
LOG_TAIL_LINES = 20
MAX_ACTIVE_TASKS = 20000  # array members one user may have held, pending or running
PUBLIC_DROP = ("hold_id", "accounts")
TRACKED = ("state", "counts", "runtime_s", "started_at", "cost_so_far_micro", "reason")


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in PUBLIC_DROP}


class JobManager:
    """Owns submission for every user; thin REST handlers and magics call into it."""

    def __init__(self, engine, backends: Mapping[str, Backend], ledger: LedgerProtocol,
                 catalog=None, prices=None, default_backend: str | None = None,
                 log: logging.Logger | None = None, *, max_spec_bytes: int = MAX_SPEC_BYTES,
                 max_array_size: int = MAX_ARRAY, max_active_tasks: int = MAX_ACTIVE_TASKS):
        """``catalog``: the app catalog; ``prices``: the costs ``PriceCatalog`` every job is
        priced from (default: this process's, ``process_catalog()``). Bounds (each a
        SpecError, a 400 in the service): ``max_spec_bytes`` of a spec as JSON,
        ``max_array_size`` members per job, ``max_active_tasks`` array members a user may
        have held, pending or running at once."""
        if not backends:
            raise AtomError("JobManager needs at least one backend")
        self.store = JobStore(engine)
        self.backends = dict(backends)
        self.ledger = ledger
        self.catalog = catalog
        self.prices = prices
        self.default_backend = default_backend or next(iter(self.backends))
        self.log = log or logging.getLogger("lens.atom")
        self._lock = asyncio.Lock()
        self.max_spec_bytes = max_spec_bytes
        self.max_array_size = min(max_array_size, MAX_ARRAY)
        self.max_active_tasks = max_active_tasks

    # --- helpers -------------------------------------------------------------------------
    def _spec(self, spec: JobSpec | Mapping[str, Any]) -> JobSpec:
        if not isinstance(spec, JobSpec):
            spec = parse_spec(spec, self.catalog, max_bytes=self.max_spec_bytes)
        if spec.array_size > self.max_array_size:
            raise SpecError("array.size", f"{spec.array_size} members is more than this "
                            f"service allows per job", f"1..{self.max_array_size}")
        return spec

    def _check_active(self, user: str, spec: JobSpec) -> None:
        active = sum(r["array_size"] for r in self.store.in_states((HELD, *ACTIVE_STATES), user))
        if active + spec.array_size > self.max_active_tasks:
            raise SpecError("array.size", f"you have {active} tasks held, pending or running; "
                            f"{spec.array_size} more would pass the limit of "
                            f"{self.max_active_tasks}", "wait for jobs to finish, or cancel some")

    def _backend(self, name: str | None) -> tuple[str, Backend]:
        name = name or self.default_backend
        if name not in self.backends:
            raise SpecError("backend", f"unknown backend {name!r}", ", ".join(self.backends))
        return name, self.backends[name]

    def _owned(self, user: str, job_id: str) -> dict[str, Any]:
        rec = self.store.get(job_id) if isinstance(job_id, str) else None
        if rec is None or rec["user"] != user:
            raise JobNotFound(job_id)
        return rec

    @staticmethod
    def _ref(rec: dict[str, Any]) -> JobRef:
        return JobRef(rec["backend_id"], rec["id"], rec["user"], rec["array_size"])

    # --- estimate / apps -----------------------------------------------------------------
    def estimate(self, spec: JobSpec | Mapping[str, Any]) -> dict[str, Any]:
        """Instance choice, hourly rate, cost bounds and price snapshot; submits nothing."""
        spec = self._spec(spec)
        name, backend = self._backend(spec.backend)
        est = estimate_spec(spec, self.catalog, self.prices,
                            getattr(backend, "node_rate_micro", None))
        est["backend"] = name
        return est

    def apps(self) -> list[dict[str, Any]]:
        return self.catalog.list() if self.catalog is not None else []

    # --- submit --------------------------------------------------------------------------
    async def submit(self, user: str, groups, spec: JobSpec | Mapping[str, Any]) -> dict:
        """Estimate, hold the worst-case cost, submit, persist. Raises BudgetExceeded
        (from the ledger) with the estimate and remaining budget when over budget."""
        spec = self._spec(spec)
        groups = tuple(groups or ())
        name, backend = self._backend(spec.backend)
        self._check_active(user, spec)
        project = spec.project
        if project is not None and project not in groups:
            raise SpecError("project", f"{project!r} is not one of your groups",
                            ", ".join(groups) or "none")
        if project is None and groups:
            project = groups[0]
        deps = []
        for dep in spec.depends_on:
            drec = self._owned(user, dep.job_id)
            if drec["backend"] != name:
                raise SpecError("depends_on", f"{dep.job_id} runs on {drec['backend']}, "
                                f"this job on {name}", drec["backend"])
            if not drec.get("backend_id"):
                raise SpecError("depends_on", f"{dep.job_id} was never submitted ({drec['state']})")
            deps.append((drec["backend_id"], dep.type))
        est = self.estimate(spec)
        image = spec.image
        if spec.app and self.catalog is not None:
            image = self.catalog.get(spec.app).image_for(spec.arch, spec.version)
        lens_id = f"j-{uuid.uuid4().hex[:12]}"
        accounts = [f"user:{user}"] + ([f"group:{project}"] if project else [])
        hold_id = self.ledger.hold(accounts, est["est_cost_micro"], LEDGER_CATEGORY, lens_id,
                                   f"atom job {spec.name} ({est['instance_type']} x "
                                   f"{spec.nodes * spec.array_size})")
        now = time.time()
        rec: dict[str, Any] = {
            "id": lens_id, "user": user, "groups": list(groups), "project": project,
            "accounts": accounts, "name": spec.name, "backend": name, "backend_id": None,
            "state": HELD, "reason": "", "exit_code": None, "created": now,
            "submitted_at": None, "started_at": None, "ended_at": None, "runtime_s": 0.0,
            "array_size": spec.array_size, "nodes": spec.nodes, "counts": {},
            "estimate": est, "hold_id": hold_id, "cost_micro": None, "cost_so_far_micro": 0,
            "failure": None, "cancel_requested": False, "image": image, "spec": spec.to_dict(),
        }
        self.store.put(rec)
        tags = job_tags(spec.tags_dict, user=user, project=project, job_id=lens_id)
        env = job_env(spec, lens_id)
        sub = Submission(lens_id, user, groups, spec, image, tuple(deps), tags, env)
        try:
            rec["backend_id"] = await backend.submit(sub)
        except asyncio.CancelledError:
            self.log.warning("atom: submission of %s was cancelled; %s may have accepted it",
                             lens_id, name)
            self._reject(rec, "the submission was interrupted")
            raise
        except AtomError as exc:
            self._reject(rec, str(exc))
            raise
        except Exception as exc:
            self._reject(rec, str(exc) or type(exc).__name__)
            raise BackendError(f"{name} refused the job: {exc}") from exc
        rec.update(state="PENDING", submitted_at=time.time())
        self.store.put(rec)
        self.log.info("atom: %s submitted %s to %s as %s", user, lens_id, name, rec["backend_id"])
        return _public(rec)

    def _reject(self, rec: dict[str, Any], reason: str) -> None:
        self.ledger.release(rec["hold_id"])
        rec.update(state=REJECTED, reason=reason, ended_at=time.time(), cost_micro=0)
        self.store.put(rec)

    # --- queries -------------------------------------------------------------------------
    def list(self, user: str) -> list[dict[str, Any]]:
        return [_public(r) for r in self.store.for_user(user)]

    def get(self, user: str, job_id: str) -> dict[str, Any]:
        return _public(self._owned(user, job_id))

    async def logs(self, user: str, job_id: str, tail: int | None = None,
                   index: int | None = None) -> str:
        rec = self._owned(user, job_id)
        if not rec.get("backend_id"):
            return ""
        if index is None:
            index = (rec.get("failure") or {}).get("index") or 0
        if not 0 <= index < rec["array_size"]:
            raise SpecError("index", f"{index} is out of range", f"0..{rec['array_size'] - 1}")
        _, backend = self._backend(rec["backend"])
        return await backend.logs(self._ref(rec), index, tail)

    async def cancel(self, user: str, job_id: str) -> dict[str, Any]:
        rec = self._owned(user, job_id)
        if rec["state"] not in ACTIVE_STATES:
            return _public(rec)
        _, backend = self._backend(rec["backend"])
        await backend.cancel(self._ref(rec))
        async with self._lock:
            rec = self.store.get(job_id)
            rec["cancel_requested"] = True
            self.store.put(rec)
            if rec["state"] in ACTIVE_STATES:
                await self._refresh_backend(rec["backend"], [rec])
        return _public(self.store.get(job_id))

    # --- tracking ------------------------------------------------------------------------
    async def refresh(self) -> dict[str, int]:
        """One batched status call per backend for every active job; charge finished ones."""
        async with self._lock:
            by_backend: dict[str, list[dict]] = defaultdict(list)
            for rec in self.store.in_states(ACTIVE_STATES):
                by_backend[rec["backend"]].append(rec)
            results = await asyncio.gather(
                *(self._refresh_backend(n, recs) for n, recs in by_backend.items()))
        return {n: r for n, r in zip(by_backend, results, strict=True)}

    async def _refresh_backend(self, name: str, recs: list[dict]) -> int:
        backend = self.backends.get(name)
        if backend is None:
            statuses = {}
        else:
            statuses = await backend.status([self._ref(r) for r in recs])
        for rec in recs:
            st = statuses.get(rec["backend_id"]) or BackendStatus(
                LOST, reason=f"backend {name} no longer reports this job")
            await self._apply(rec, st, backend)
        return len(recs)

    async def _apply(self, rec: dict, st: BackendStatus, backend: Backend | None) -> None:
        rate = rec["estimate"]["hourly_rate_micro"]
        seen = {k: rec.get(k) for k in TRACKED}
        rec.update(state=st.state, counts=st.counts, runtime_s=round(st.task_seconds, 3),
                   started_at=st.started_at or rec.get("started_at"),
                   cost_so_far_micro=actual_cost(st.task_seconds, rec["nodes"], rate))
        if st.reason:
            rec["reason"] = st.reason
        if st.state not in TERMINAL_STATES and all(rec.get(k) == v for k, v in seen.items()):
            return  # nothing new: the record (spec and all) is not rewritten every refresh
        if st.state in TERMINAL_STATES:
            rec.update(ended_at=st.ended_at or time.time(), exit_code=st.exit_code,
                       cost_micro=rec["cost_so_far_micro"])
            if st.state != "SUCCEEDED":
                rec["failure"] = {"index": st.failed_index, "exit_code": st.exit_code,
                                  "reason": st.reason, "log_tail": ""}
                if backend is not None and rec.get("backend_id"):
                    try:
                        rec["failure"]["log_tail"] = await backend.logs(
                            self._ref(rec), st.failed_index or 0, LOG_TAIL_LINES)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # logs are best effort; the state is not
                        rec["failure"]["log_tail"] = f"(logs unavailable: {exc})"
            self.ledger.charge(rec["hold_id"], rec["cost_micro"])
            self.log.info("atom: %s %s %s, charged %s micro-USD", rec["user"], rec["id"],
                          st.state, rec["cost_micro"])
        self.store.put(rec)

    async def poll(self, interval: float = 5.0) -> None:
        """Refresh forever (run as a task of the lens service; cancel it to stop)."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("atom: refresh failed")
            await asyncio.sleep(interval)

    async def start(self) -> dict[str, int]:
        """Re-adopt jobs after a service restart: active jobs are looked up again (and
        reported LOST by their backend if gone); half-submitted ones are marked LOST."""
        lost = 0
        for rec in self.store.in_states([HELD]):
            self.ledger.release(rec["hold_id"])
            rec.update(state=LOST, reason="the service stopped while submitting this job",
                       ended_at=time.time(), cost_micro=0)
            self.store.put(rec)
            lost += 1
        await self.refresh()
        adopted = len(self.store.in_states(ACTIVE_STATES))
        return {"adopted": adopted, "lost_in_submission": lost}
