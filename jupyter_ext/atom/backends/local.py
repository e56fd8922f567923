"""The local backend: jobs run as processes on this machine, as the submitting user.

Every task runs under a small detached supervisor (``_runner.py``) that records its exit
status on disk, so the state survives a restart of the lens service: on start, tasks whose
supervisor is still alive are re-adopted, and tasks that vanished without an exit record
are reported LOST. Arrays, dependencies (afterok/afterany) and a concurrency limit are
handled by the scheduler step that runs on every submit and status call; free slots go to
the user with the fewest tasks running (``atom/fairshare.py``), so one user's big array
never keeps another user's job waiting until it drains.

The scheduler keeps each job's tally in memory (``_Tally``: members finished by state,
members running, a cursor to the first never-started member), so a step reads files only
for running tasks and costs the same for a 10-member array as for a 10,000-member one;
the task folders that exist are read once, when the service starts and re-adopts
its jobs. Submit,
status and cancel still run in a worker thread, one at a time (``_lock``), so the
service's event loop stays free while processes are started.

As root with cgroup v2, each task gets its own cgroup (``jupyter_ext/cgroups.py``): it is
metered until its last process exits, and cancel and walltime kill all of it, processes
that left the job's session included. Elsewhere tasks are tracked by process group, and a
warning says so once.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ... import cgroups
from ..errors import BackendError, JobNotFound
from ..fairshare import fair_pick
from ..usermap import unix_account
from .base import (
    CANCELLED,
    FAILED,
    LOST,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    BackendStatus,
    JobRef,
    Submission,
    read_tail,
    summarize,
)

RUNNER = str(Path(__file__).with_name("_runner.py"))
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
_warned_no_cgroups = False


def _warn_no_cgroups(log: logging.Logger) -> None:
    global _warned_no_cgroups
    if not _warned_no_cgroups:
        _warned_no_cgroups = True
        log.warning("atom local backend: no cgroup v2 group to run jobs in (needs root and "
                    "a writable cgroup v2 hierarchy); jobs are tracked by process group, so "
                    "processes that leave it (setsid) escape walltime, cancel and metering")


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (to tell a live process from a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has finished
        return None
    return fields[19]


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return f": {lines[-1][:300]}" if lines else ""


def _same_process(pid: dict) -> bool:
    """Is the recorded supervisor still running (not a later process with its pid)?"""
    return pid.get("start") is not None and _proc_start(pid["pid"]) == pid["start"]


def _read_log(path: Path, tail: int | None) -> str:
    """The end of a task's output: ``tail`` lines, at most ``MAX_LOG_BYTES`` read."""
    try:
        with open(path, "rb") as f:
            return read_tail(f, tail)
    except FileNotFoundError:
        return ""


@dataclass
class _Tally:
    """What the scheduler knows of one job, kept up to date as its tasks start and end."""

    size: int
    user: str
    parallel: int | None = None
    cursor: int = 0  # every member below it has been started (or has ended)
    live: dict[int, float] = field(default_factory=dict)  # started, not ended: index -> start
    ended: collections.Counter = field(default_factory=collections.Counter)  # by state
    seconds: float = 0.0  # runtime of the members that ended
    first_start: float | None = None
    last_end: float | None = None
    first_bad: int | None = None  # lowest FAILED or LOST member
    first_cancelled: int | None = None  # lowest member that ended CANCELLED
    stopped: str | None = None  # cancelled or blocked: the reason its unstarted members end

    def unstarted(self) -> int:
        return self.size - len(self.live) - sum(self.ended.values())

    def record(self, i: int, state: str, rec: dict, now: float) -> None:
        self.live.pop(i, None)
        self.ended[state] += 1
        started = rec.get("started")
        if started:
            self.seconds += (rec.get("ended") or now) - started
            self.first_start = min(self.first_start or started, started)
        if rec.get("ended"):
            self.last_end = max(self.last_end or 0.0, rec["ended"])
        if state in (FAILED, LOST) and (self.first_bad is None or i < self.first_bad):
            self.first_bad = i
        if state == CANCELLED and (self.first_cancelled is None or i < self.first_cancelled):
            self.first_cancelled = i


class LocalBackend(LoggingConfigurable):
    """Run atom jobs as local processes under the users' own unix accounts."""

    name = "local"
    state_dir = Unicode(
        help="Directory for job records and captured output (root-owned when run as root).",
    ).tag(config=True)
    max_concurrency = Integer(
        max(1, os.cpu_count() or 1),
        help="How many tasks (array members count one each) may run at the same time.",
    ).tag(config=True)
    user_template = Unicode(
        "jupyter-{name}",
        help="Unix account that runs a hub user's jobs; {name} is the hub user name. "
        "Must match the spawner's mapping.",
    ).tag(config=True)
    node_rate_micro = Integer(
        None, allow_none=True,
        help="Price of one node-hour in micro-dollars; None prices jobs like the EC2 "
        "instance the estimator picks.",
    ).tag(config=True)
    python = Unicode(sys.executable, help="Python that runs the task supervisor.").tag(config=True)
    use_cgroups = Bool(
        True,
        help="Run each task in its own cgroup v2 group (as root, when the hierarchy is "
        "writable), so it is metered until its last process exits and killed as a whole. "
        "Without it, or where that is impossible, tasks are tracked by process group.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.state_dir:
            raise BackendError("LocalBackend.state_dir must be set")
        self.root = Path(self.state_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.calls: collections.Counter = collections.Counter()
        self._procs: dict[tuple[str, int], subprocess.Popen] = {}
        self._done: dict[tuple[str, int], dict] = {}
        self._jobs: dict[str, dict] = {}
        self._tally: dict[str, _Tally] = {}
        self._served: dict[str, int] = {}  # user -> number of the step that last started one
        self._steps = 0
        self._lock = threading.RLock()  # the worker threads take turns on the state above
        self.cgroup_parent: Path | None = None
        if self.use_cgroups:
            self.cgroup_parent = cgroups.job_cgroup_parent()
            if self.cgroup_parent is None:
                _warn_no_cgroups(self.log)
        for jobdir in sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime):
            job = _read_json(jobdir / "job.json")
            if job is not None:
                self._jobs[jobdir.name] = job  # re-adopted: states come from disk and /proc
                self._readopt(jobdir.name)

    def _new_tally(self, bid: str) -> _Tally:
        job = self._jobs[bid]
        tally = self._tally[bid] = _Tally(job["size"], job["user"], job.get("parallel"))
        return tally

    def _readopt(self, bid: str) -> None:
        """Rebuild a job's tally from its folder: the tasks that were ever started."""
        tally = self._new_tally(bid)
        jobdir = self.root / bid
        blocked = _read_json(jobdir / "blocked.json")
        if (jobdir / "cancelled").exists():
            tally.stopped = "CANCELLED"
        elif blocked:
            tally.stopped = blocked["reason"]
        try:
            started = sorted(int(n) for n in os.listdir(jobdir / "tasks") if n.isdigit())
        except FileNotFoundError:
            started = []
        for i in started:
            if i < tally.size:
                state, rec = self._task_state(bid, i)
                if state == RUNNING:
                    tally.live[i] = rec["started"]

    # --- submit --------------------------------------------------------------------------
    async def _in_thread(self, func, *args):
        def locked():
            with self._lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    async def submit(self, sub: Submission) -> str:
        return await self._in_thread(self._submit, sub)

    def _submit(self, sub: Submission) -> str:
        acct = unix_account(sub.user, self.user_template)
        spec = sub.spec
        if spec.nodes > 1:
            raise BackendError("the local backend runs single-node jobs only (nodes=1)")
        for dep, _ in sub.depends_on:
            if dep not in self._jobs:
                raise BackendError(f"dependency {dep} is not a local job")
        bid = f"local-{uuid.uuid4().hex[:16]}"
        jobdir = self.root / bid
        (jobdir / "tasks").mkdir(parents=True, mode=0o700)
        os.chmod(jobdir, 0o711)
        userdir = jobdir / "user"
        userdir.mkdir(mode=0o700)
        argv = list(spec.command)
        if spec.script is not None:  # written before the user owns the directory
            script = userdir / "script.sh"
            script.write_text(spec.script)
            argv = ["/bin/bash", str(script)]
        if os.geteuid() == 0:
            for path in (userdir, *userdir.iterdir()):
                os.chown(path, acct.uid, acct.gid)
        home = acct.home if os.path.isdir(acct.home) else str(userdir)
        # the user's variables may change SHELL/LANG, never who or where the job runs
        env = {"SHELL": "/bin/bash", "LANG": "C.UTF-8", **sub.env, "PATH": BASE_PATH,
               "HOME": home, "USER": acct.name, "LOGNAME": acct.name}
        job = {
            "lens_id": sub.lens_id, "user": sub.user, "argv": argv, "env": env,
            "uid": acct.uid if os.geteuid() == 0 else None, "gid": acct.gid,
            "groups": list(acct.groups), "cwd": home, "walltime_s": spec.walltime_s,
            "array": spec.array is not None, "size": spec.array_size,
            "params": [spec.array.params_for(i) for i in range(spec.array.size)]
            if spec.array and spec.array.params else [],
            "parallel": spec.array.parallel if spec.array else None,
            "depends_on": [list(d) for d in sub.depends_on], "created": time.time(),
        }
        _write_json(jobdir / "job.json", job)
        self._jobs[bid] = job
        self._new_tally(bid)
        self.calls["submit"] += 1
        self._schedule()
        return bid

    # --- scheduler -----------------------------------------------------------------------
    def _task_state(self, bid: str, i: int) -> tuple[str, dict]:
        """A started task's state from its files (and /proc); an ended one is remembered."""
        key = (bid, i)
        if key in self._done:
            return self._done[key]["state"], self._done[key]
        tdir = self.root / bid / "tasks" / str(i)
        rec = _read_json(tdir / "exit.json")
        if rec is None:
            pid = _read_json(tdir / "pid.json")
            if pid is None:
                if (tdir / "launch.json").exists() and key not in self._procs:
                    rec = {"exit_code": None, "reason": "lost before its supervisor started",
                           "lost": True}
                else:
                    return PENDING, {}
            else:
                proc = self._procs.get(key)
                alive = proc.poll() is None if proc else _same_process(pid)
                if alive:
                    return RUNNING, {"started": pid["time"]}
                rec = _read_json(tdir / "exit.json") or {
                    "exit_code": None, "lost": True, "started": pid["time"],
                    "reason": "supervisor vanished (lost)" + _last_line(tdir / "runner.err")}
        self._procs.pop(key, None)
        if rec.get("lost"):
            state = LOST
            group = (_read_json(tdir / "launch.json") or {}).get("cgroup")
            if group:  # what the vanished supervisor left running is killed with it
                cgroups.kill_cgroup(Path(group))
        elif rec.get("reason") == "CANCELLED":
            state = CANCELLED
        elif rec.get("reason") == "TIMEOUT":  # also when only leftovers ran out of time
            state = FAILED
        else:
            state = SUCCEEDED if rec.get("exit_code") == 0 else FAILED
        rec["state"] = state
        self._done[key] = rec
        self._tally[bid].record(i, state, rec, time.time())
        return state, rec

    def _first_unstarted(self, bid: str) -> int:
        """The lowest member never started (``size`` if none); moves the cursor past the
        started ones, so each member is stepped over once in the job's life."""
        tally = self._tally[bid]
        while tally.cursor < tally.size and (
                tally.cursor in tally.live or (bid, tally.cursor) in self._done):
            tally.cursor += 1
        return tally.cursor

    def _job_state(self, bid: str) -> tuple[str, dict[str, int]]:
        """Overall state and members per state, from the tally (no file is read)."""
        tally = self._tally[bid]
        counts = collections.Counter(tally.ended)
        counts[RUNNING] += len(tally.live)
        counts[CANCELLED if tally.stopped else PENDING] += tally.unstarted()
        return summarize(counts)

    def _deps_ready(self, bid: str) -> bool:
        for dep, kind in self._jobs[bid]["depends_on"]:
            state = self._job_state(dep)[0] if dep in self._jobs else LOST
            if state not in TERMINAL_STATES:
                return False
            if kind == "afterok" and state != SUCCEEDED:
                reason = f"DependencyNeverSatisfied: {dep} ended {state}"
                _write_json(self.root / bid / "blocked.json", {"reason": reason})
                self._tally[bid].stopped = reason
                return False
        return True

    def _waiting(self, bid: str):
        """The members of one job that may start now, lowest index first (lazily)."""
        tally = self._tally[bid]
        allowed = tally.size if not tally.parallel else tally.parallel - len(tally.live)
        i = self._first_unstarted(bid)
        while allowed > 0 and i < tally.size:
            if i not in tally.live and (bid, i) not in self._done:
                yield bid, i
                allowed -= 1
            i += 1

    def _user_queue(self, bids: list[str]):
        for bid in bids:
            yield from self._waiting(bid)

    def _schedule(self) -> None:
        """Launch pending tasks whose dependencies are met, within the limits, sharing the
        free slots fairly between users. Reads files for running tasks only."""
        for bid, tally in self._tally.items():
            for i in list(tally.live):
                self._task_state(bid, i)  # an ended task leaves ``live`` (and _procs)
        running = collections.Counter()
        for tally in self._tally.values():
            running[tally.user] += len(tally.live)
        slots = self.max_concurrency - sum(running.values())
        if slots <= 0:
            return
        by_user: dict[str, list[str]] = {}  # each user's jobs, oldest first
        for bid, tally in self._tally.items():
            if tally.stopped or not tally.unstarted() or (
                    tally.parallel and len(tally.live) >= tally.parallel):
                continue
            if self._deps_ready(bid):
                by_user.setdefault(tally.user, []).append(bid)
        # ties go to the user served longest ago (then the oldest job), so that users take
        # turns across steps too, when every step frees a single slot
        order = sorted(by_user, key=lambda user: self._served.get(user, -1))
        queues = {user: self._user_queue(by_user[user]) for user in order}
        self._steps += 1
        for user, (bid, i) in fair_pick(queues, running, slots):
            self._launch(bid, i)
            self._served[user] = self._steps

    def _launch(self, bid: str, i: int) -> None:
        tdir = self.root / bid / "tasks" / str(i)
        tdir.mkdir(mode=0o700, exist_ok=True)
        group = self.cgroup_parent / f"{bid}-{i}" if self.cgroup_parent else None
        _write_json(tdir / "launch.json", {"time": time.time(),
                                           "cgroup": str(group) if group else None})
        with open(tdir / "runner.err", "wb") as err:  # the supervisor's own failures
            proc = subprocess.Popen(
                [self.python, "-I", RUNNER, str(tdir)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, close_fds=True)
        self._procs[(bid, i)] = proc
        started = time.time()
        _write_json(tdir / "pid.json", {"pid": proc.pid, "start": _proc_start(proc.pid),
                                        "time": started})
        self._tally[bid].live[i] = started
        self.calls["spawn"] += 1

    # --- status / cancel / logs / list ---------------------------------------------------
    async def status(self, refs: list[JobRef]) -> dict[str, BackendStatus]:
        return await self._in_thread(self._status, refs)

    def _status(self, refs: list[JobRef]) -> dict[str, BackendStatus]:
        self.calls["status"] += 1
        self._schedule()
        now = time.time()
        out = {}
        for ref in refs:
            if ref.backend_id not in self._jobs:
                out[ref.backend_id] = BackendStatus(LOST, reason="unknown to the local backend")
                continue
            out[ref.backend_id] = self._job_status(ref.backend_id, now)
        return out

    def _job_status(self, bid: str, now: float) -> BackendStatus:
        tally = self._tally[bid]
        state, counts = self._job_state(bid)
        st = BackendStatus(state, counts=counts)
        starts = [s for s in (tally.first_start, *tally.live.values()) if s]
        st.started_at = min(starts) if starts else None
        st.task_seconds = tally.seconds + sum(now - s for s in tally.live.values())
        index = tally.first_bad
        if state == CANCELLED:  # the first member that ended cancelled, or never started
            unstarted = self._first_unstarted(bid) if tally.unstarted() else None
            index = min((i for i in (tally.first_cancelled, unstarted) if i is not None),
                        default=None)
        if index is not None:
            rec = self._done.get((bid, index)) or {"reason": tally.stopped}
            st.failed_index = index
            st.exit_code = rec.get("exit_code")
            st.reason = rec.get("reason") or (
                f"exit code {rec.get('exit_code')}" if rec.get("state") == FAILED else
                rec.get("state", state))
        if state in TERMINAL_STATES:
            st.ended_at = tally.last_end or now
            if state == SUCCEEDED:
                st.exit_code = 0
        return st

    async def cancel(self, ref: JobRef) -> None:
        await self._in_thread(self._cancel, ref)

    def _cancel(self, ref: JobRef) -> None:
        jobdir = self.root / ref.backend_id
        if ref.backend_id not in self._jobs:
            raise JobNotFound(ref.lens_id)
        self.calls["cancel"] += 1
        (jobdir / "cancelled").touch()  # unstarted members end CANCELLED; it survives a restart
        tally = self._tally[ref.backend_id]
        tally.stopped = tally.stopped or "CANCELLED"
        for i in list(tally.live):  # a supervisor not yet ready sees the marker itself
            tdir = jobdir / "tasks" / str(i)
            pid = _read_json(tdir / "pid.json")
            if pid and (tdir / "ready.json").exists() and _same_process(pid):
                try:
                    os.kill(pid["pid"], signal.SIGTERM)
                except ProcessLookupError:
                    pass

    async def logs(self, ref: JobRef, index: int | None = None, tail: int | None = None) -> str:
        if ref.backend_id not in self._jobs:
            raise JobNotFound(ref.lens_id)
        path = self.root / ref.backend_id / "tasks" / str(index or 0) / "output.log"
        self.calls["logs"] += 1
        return _read_log(path, tail)

    async def list(self) -> list[str]:
        return list(self._jobs)

    def purge(self, backend_id: str) -> None:
        """Remove a finished job's files (admin clean-up)."""
        with self._lock:
            if self._job_state(backend_id)[0] in TERMINAL_STATES:
                shutil.rmtree(self.root / backend_id, ignore_errors=True)
                self._jobs.pop(backend_id, None)
                self._tally.pop(backend_id, None)
