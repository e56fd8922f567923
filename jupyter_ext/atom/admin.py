"""Admin actions on other users' jobs outside the lens service (``lens workshop close``).

``cancel_jobs_of`` cancels every active job of some users at its backend. It
writes no job record and charges nothing: the lens service's next refresh sees
the backend's CANCELLED state, records the end and charges the runtime once
(the service stays the only writer of job records and money, so two processes
never race on a record or charge a hold twice).
Backends are built on demand, so a CLI needs only those its users' jobs used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .backends.base import ACTIVE_STATES, Backend, JobRef
from .store import JobStore

log = logging.getLogger("lens.atom")


@dataclass
class CancelReport:
    cancelled: dict[str, list[str]] = field(default_factory=dict)  # user -> lens job ids
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.cancelled.values())


async def cancel_jobs_of(engine, users: Iterable[str],
                         backend_for: Callable[[str], Backend]) -> CancelReport:
    """Cancel the active jobs of ``users``; ``backend_for(name)`` builds a backend."""
    store = JobStore(engine)
    built: dict[str, Backend | Exception] = {}
    report = CancelReport()
    for user in users:
        for rec in store.for_user(user):
            if rec["state"] == "HELD":
                report.problems.append(f"{rec['id']} ({user}): being submitted right now; "
                                       "cancel it once it shows up")
                continue
            if rec["state"] not in ACTIVE_STATES or not rec.get("backend_id"):
                continue
            name = rec["backend"]
            if name not in built:
                try:
                    built[name] = backend_for(name)
                except Exception as exc:  # one missing backend must not stop the others
                    built[name] = exc
            backend = built[name]
            if isinstance(backend, Exception):
                report.problems.append(f"{rec['id']} ({user}): the {name} backend is not "
                                       f"available here: {backend}")
                continue
            try:
                await backend.cancel(JobRef(rec["backend_id"], rec["id"], rec["user"],
                                            rec["array_size"]))
            except Exception as exc:
                report.problems.append(f"{rec['id']} ({user}): {name} refused the cancel: {exc}")
                continue
            report.cancelled.setdefault(user, []).append(rec["id"])
            log.info("atom: cancelled %s of %s on %s (admin)", rec["id"], user, name)
    return report
