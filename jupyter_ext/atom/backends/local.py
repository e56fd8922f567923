"""The local backend: jobs run as processes on this machine, as the submitting user.

Every task runs under a small detached supervisor (``_runner.py``) that records its exit
status on disk, so the state survives a restart of the lens service: on start, tasks whose
supervisor is still alive are re-adopted, and tasks that vanished without an exit record
are reported LOST. Arrays, dependencies (afterok/afterany) and a concurrency limit are
handled by the scheduler step that runs on every submit and status call.

That step reads a few files per waiting task, which for big arrays is real time (three
10,000-member arrays: about 1.7 s), so submit, status and cancel run in a worker thread,
one at a time (``_lock``), and the service's event loop stays free.

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
from pathlib import Path

from traitlets import Bool, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ... import cgroups
from ..errors import BackendError, JobNotFound
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
        self.calls["submit"] += 1
        self._schedule()
        return bid

    # --- scheduler -----------------------------------------------------------------------
    def _task_state(self, bid: str, i: int) -> tuple[str, dict]:
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
        return state, rec

    def _job_tasks(self, bid: str) -> list[tuple[str, dict]]:
        job = self._jobs[bid]
        blocked = _read_json(self.root / bid / "blocked.json")
        out = []
        for i in range(job["size"]):
            state, rec = self._task_state(bid, i)
            if state == PENDING and blocked:
                state, rec = CANCELLED, {"reason": blocked["reason"]}
            out.append((state, rec))
        return out

    def _job_state(self, bid: str) -> str:
        return summarize([s for s, _ in self._job_tasks(bid)])[0]

    def _deps_ready(self, bid: str) -> bool:
        for dep, kind in self._jobs[bid]["depends_on"]:
            state = self._job_state(dep) if dep in self._jobs else LOST
            if state not in TERMINAL_STATES:
                return False
            if kind == "afterok" and state != SUCCEEDED:
                _write_json(self.root / bid / "blocked.json",
                            {"reason": f"DependencyNeverSatisfied: {dep} ended {state}"})
                return False
        return True

    def _schedule(self) -> None:
        """Launch pending tasks whose dependencies are met, within the limits."""
        for key, proc in list(self._procs.items()):
            if proc.poll() is not None:
                self._task_state(*key)  # records the outcome and forgets the process
        waiting = {bid: [i for i in range(job["size"])
                         if (bid, i) not in self._done and (bid, i) not in self._procs]
                   for bid, job in self._jobs.items()}
        adopted = sum(1 for bid, idx in waiting.items() for i in idx
                      if self._task_state(bid, i)[0] == RUNNING)
        running = len(self._procs) + adopted
        for bid, job in self._jobs.items():
            if running >= self.max_concurrency:
                return
            jobdir = self.root / bid
            if not waiting[bid] or (jobdir / "cancelled").exists() or (
                    jobdir / "blocked.json").exists() or not self._deps_ready(bid):
                continue
            slots = self.max_concurrency - running
            if job.get("parallel"):
                mine = sum(1 for j in range(job["size"]) if (bid, j) in self._procs)
                slots = min(slots, job["parallel"] - mine)
            for i in waiting[bid]:
                if slots <= 0:
                    break
                if self._task_state(bid, i)[0] == PENDING:
                    self._launch(bid, i)
                    running += 1
                    slots -= 1

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
        _write_json(tdir / "pid.json", {"pid": proc.pid, "start": _proc_start(proc.pid),
                                        "time": time.time()})
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
            tasks = self._job_tasks(ref.backend_id)
            state, counts = summarize([s for s, _ in tasks])
            st = BackendStatus(state, counts=counts)
            starts = [r["started"] for _, r in tasks if r.get("started")]
            st.started_at = min(starts) if starts else None
            for idx, (s, rec) in enumerate(tasks):
                if rec.get("started"):
                    st.task_seconds += (rec.get("ended") or now) - rec["started"]
                if s in (FAILED, LOST, CANCELLED) and st.failed_index is None and (
                        s != CANCELLED or state == CANCELLED):
                    st.failed_index = idx
                    st.exit_code = rec.get("exit_code")
                    st.reason = rec.get("reason") or (
                        f"exit code {rec.get('exit_code')}" if s == FAILED else s)
            if state in TERMINAL_STATES:
                ends = [r.get("ended") for _, r in tasks if r.get("ended")]
                st.ended_at = max(ends) if ends else now
                if state == SUCCEEDED:
                    st.exit_code = 0
            out[ref.backend_id] = st
        return out

    async def cancel(self, ref: JobRef) -> None:
        await self._in_thread(self._cancel, ref)

    def _cancel(self, ref: JobRef) -> None:
        jobdir = self.root / ref.backend_id
        if ref.backend_id not in self._jobs:
            raise JobNotFound(ref.lens_id)
        self.calls["cancel"] += 1
        (jobdir / "cancelled").touch()
        for i in range(self._jobs[ref.backend_id]["size"]):
            state, _ = self._task_state(ref.backend_id, i)
            if state == PENDING:
                self._done[(ref.backend_id, i)] = {"state": CANCELLED, "reason": "CANCELLED"}
                tdir = jobdir / "tasks" / str(i)
                tdir.mkdir(mode=0o700, exist_ok=True)
                _write_json(tdir / "exit.json", {"exit_code": None, "reason": "CANCELLED"})
            elif state == RUNNING:  # a supervisor not yet ready sees the marker itself
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
            if self._job_state(backend_id) in TERMINAL_STATES:
                shutil.rmtree(self.root / backend_id, ignore_errors=True)
                self._jobs.pop(backend_id, None)
