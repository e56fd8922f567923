"""The Slurm backend: sbatch/squeue/sacct/scancel driven with argv lists (no shell).

- submit: ``sbatch --parsable`` with every option on the command line (never #SBATCH
  lines built from user text), run as the user with ``--uid/--gid`` when lens is root;
- status: ONE parsable ``squeue --array --states=all`` per refresh, plus one ``sacct -c`` (jobcomp)
  call for plain jobs that already left squeue;
- cancel: ``scancel``; logs: the job's output files.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import re
import stat
import time
from pathlib import Path

from traitlets import Dict, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import BackendError, JobNotFound
from ..script import render_script
from ..usermap import UnixAccount, unix_account
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

STATE_MAP = {
    "PENDING": PENDING, "CONFIGURING": PENDING, "REQUEUED": PENDING, "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING, "RESV_DEL_HOLD": PENDING, "SUSPENDED": PENDING,
    "RUNNING": RUNNING, "COMPLETING": RUNNING, "STAGE_OUT": RUNNING, "SIGNALING": RUNNING,
    "RESIZING": RUNNING,
    "COMPLETED": SUCCEEDED, "CANCELLED": CANCELLED,
    "FAILED": FAILED, "TIMEOUT": FAILED, "NODE_FAIL": FAILED, "OUT_OF_MEMORY": FAILED,
    "PREEMPTED": FAILED, "BOOT_FAIL": FAILED, "DEADLINE": FAILED, "REVOKED": FAILED,
}
SQUEUE_FIELDS = ("JobID", "ArrayJobID", "ArrayTaskID", "State", "Reason", "StartTime",
                 "EndTime", "exit_code")
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS)
PARAM_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


def parse_squeue(text: str) -> dict[str, dict[int, list]]:
    """Rows of ``squeue --array --Format=SQUEUE_FORMAT`` -> bid -> {index: row}."""
    out: dict[str, dict[int, list]] = collections.defaultdict(dict)
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < len(SQUEUE_FIELDS):
            continue
        job_id, array_id, task, state_name, reason, start, end, status = parts[:8]
        state = STATE_MAP.get(state_name.split()[0] if state_name else "", PENDING)
        start_t, end_t = _ts(start), _ts(end)
        if state == PENDING:
            start_t = end_t = None
        elif state == RUNNING:
            end_t = None
        code = decode_exit(int(status)) if status.strip().lstrip("-").isdigit() else None
        row = [state, reason if reason != "None" else "", code, start_t, end_t]
        if task.strip().isdigit():
            out[array_id.strip()][int(task)] = row
        else:
            out[job_id.strip()][0] = row
    return out


def decode_exit(status: int | None) -> int | None:
    """squeue's exit_code is a wait status: 768 -> 3; a signal n -> 128 + n."""
    if status is None:
        return None
    return 128 + (status & 0x7F) if status & 0x7F else status >> 8


def sbatch_argv(sub: Submission, acct: UnixAccount | None, *, sbatch: str, outdir: str,
                script_path: str, partition: str | None, account: str | None,
                qos: str | None, throttle: int) -> list[str]:
    """The sbatch command line (pure). Values are ours or validated; none passes a shell."""
    spec = sub.spec
    argv = [sbatch, "--parsable", f"--job-name={spec.name}", f"--comment=lens:{sub.lens_id}",
            "--export=ALL", f"--chdir={outdir}",
            f"--time={max(1, math.ceil(spec.walltime_s / 60))}",
            f"--nodes={spec.nodes}", f"--mem={spec.memory_mib}M"]
    if spec.mpi:
        argv += [f"--ntasks-per-node={spec.vcpus}", "--cpus-per-task=1"]
    else:
        argv += ["--ntasks-per-node=1", f"--cpus-per-task={spec.vcpus}"]
    if spec.gpus:
        argv.append(f"--gres=gpu:{spec.gpus}")
    if spec.array and spec.array.size > 1:
        limit = spec.array.parallel or throttle
        argv.append(f"--array=0-{spec.array.size - 1}" + (f"%{limit}" if limit else ""))
        argv.append(f"--output={outdir}/slurm-%A_%a.out")
    else:
        argv.append(f"--output={outdir}/slurm-%j.out")
    if sub.depends_on:
        argv.append("--dependency=" + ",".join(f"{kind}:{bid}" for bid, kind in sub.depends_on))
    for opt, value in (("partition", partition), ("account", account), ("qos", qos)):
        if value:
            if not PARAM_RE.match(value):
                raise BackendError(f"invalid Slurm {opt} {value!r} in the configuration")
            argv.append(f"--{opt}={value}")
    if acct is not None:
        argv += [f"--uid={acct.uid}", f"--gid={acct.gid}"]
    argv.append(script_path)
    return argv


class SlurmBackend(LoggingConfigurable):
    """Submit atom jobs to Slurm as the submitting user."""

    name = "slurm"
    state_dir = Unicode(help="Shared directory for job scripts and output files.").tag(config=True)
    slurm_conf = Unicode(os.environ.get("SLURM_CONF", ""),
                         help="SLURM_CONF for the client commands ('' = Slurm's default).").tag(config=True)
    bin_dir = Unicode("/usr/bin", help="Where sbatch, squeue, sacct and scancel live.").tag(config=True)
    user_template = Unicode("jupyter-{name}", help="Unix account of a hub user ({name}).").tag(config=True)
    partition_map = Dict(help="Partition per arch, e.g. {'arm64': 'graviton', '*': 'debug'}.").tag(config=True)
    account_map = Dict(help="Slurm account per lens group (project); '*' is the default.").tag(config=True)
    qos_map = Dict(help="QOS per pricing: {'spot': 'preemptible', 'on-demand': 'normal'}.").tag(config=True)
    array_throttle = Integer(256, help="Default %N throttle of arrays (0: none).").tag(config=True)
    node_rate_micro = Integer(None, allow_none=True,
                              help="Price of a node-hour in micro-dollars (None: EC2 equivalent).").tag(config=True)
    command_timeout = Integer(60, help="Seconds before a Slurm client command is abandoned.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.state_dir:
            raise BackendError("SlurmBackend.state_dir must be set")
        self.root = Path(self.state_dir)
        (self.root / ".meta").mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        os.chmod(self.root / ".meta", 0o700)
        self.calls: collections.Counter = collections.Counter()
        self._cache: dict[str, dict[int, list]] = {}  # bid -> {index: terminal task row}

    # --- running the clients -------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    async def _run(self, argv: list[str], ok_codes=(0,)) -> str:
        self.calls[os.path.basename(argv[0])] += 1
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env())
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.command_timeout)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode not in ok_codes:
            msg = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
            raise BackendError(f"{os.path.basename(argv[0])} failed: {msg[:500]}")
        return out.decode(errors="replace")

    def _bin(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def _outdir(self, lens_id: str) -> Path:
        return self.root / lens_id

    # --- submit --------------------------------------------------------------------------
    def _prepare(self, sub: Submission) -> list[str]:
        """Write the script and output directory; return the sbatch argv."""
        acct = unix_account(sub.user, self.user_template)
        spec = sub.spec
        outdir = self._outdir(sub.lens_id)
        outdir.mkdir(mode=0o700)
        as_root = os.geteuid() == 0
        if as_root:
            os.chown(outdir, acct.uid, acct.gid)
        env = {**sub.env, "HOME": acct.home if os.path.isdir(acct.home) else str(outdir),
               "USER": acct.name, "LOGNAME": acct.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin"}
        params = [spec.array.params_for(i) for i in range(spec.array.size)] if (
            spec.array and spec.array.params) else []
        body = render_script(argv=spec.command, script=spec.script, env=env, params=params,
                             index_var="SLURM_ARRAY_TASK_ID" if spec.array else None)
        script_path = self.root / ".meta" / f"{sub.lens_id}.sh"
        script_path.write_text(body)
        key = "spot" if spec.spot else "on-demand"
        argv = sbatch_argv(
            sub, acct if as_root else None, sbatch=self._bin("sbatch"), outdir=str(outdir),
            script_path=str(script_path),
            partition=self.partition_map.get(spec.arch, self.partition_map.get("*")),
            account=self.account_map.get(sub.tags.get("lens:group"), self.account_map.get("*")),
            qos=self.qos_map.get(key), throttle=self.array_throttle)
        return argv

    async def submit(self, sub: Submission) -> str:
        argv = self._prepare(sub)
        out = await self._run(argv)
        bid = out.strip().split(";")[0]
        if not bid.isdigit():
            raise BackendError(f"sbatch returned an unexpected id {out.strip()[:80]!r}")
        # A slurmctld that lost its state hands out ids again: what lens kept of an earlier
        # job with this id (its cached end, its jobcomp line) must not be taken for this one.
        meta = self.root / ".meta"
        (meta / f"{bid}.done.json").unlink(missing_ok=True)
        self._cache.pop(bid, None)
        (meta / f"{bid}.submitted").write_text(f"{time.time():.3f}")
        return bid

    def _submitted_at(self, bid: str) -> float:
        try:
            return float((self.root / ".meta" / f"{bid}.submitted").read_text())
        except (OSError, ValueError):
            return 0.0

    # --- status --------------------------------------------------------------------------
    def _load_cache(self, bid: str) -> dict[int, list]:
        if bid not in self._cache:
            try:
                raw = json.loads((self.root / ".meta" / f"{bid}.done.json").read_text())
                self._cache[bid] = {int(k): v for k, v in raw.items()}
            except (FileNotFoundError, json.JSONDecodeError):
                self._cache[bid] = {}
        return self._cache[bid]

    def _save_cache(self, bid: str) -> None:
        path = self.root / ".meta" / f"{bid}.done.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._cache[bid]))
        os.replace(tmp, path)

    async def _squeue(self) -> dict[str, dict[int, list]]:
        """bid -> {index: [state, reason, exit, start, end]} from ONE squeue call (array
        members expanded with -r; parsable columns are ~10x faster than --json)."""
        text = await self._run([self._bin("squeue"), "--noheader", "--array", "--states=all",
                                f"--Format={SQUEUE_FORMAT}"])
        return parse_squeue(text)

    async def _sacct(self, bids: list[str]) -> dict[str, list]:
        """Finished plain jobs that already left squeue, from the jobcomp log."""
        text = await self._run([self._bin("sacct"), "-c", "-n", "-P", "-j", ",".join(bids),
                                "-o", "jobid,state,exitcode,start,end"], ok_codes=(0, 1))
        out = {}
        for line in text.splitlines():
            parts = line.split("|")
            if len(parts) < 5 or parts[0] not in bids:
                continue
            ended = _ts(parts[4])
            if ended is not None and ended < self._submitted_at(parts[0]) - 2:
                continue  # an earlier job that had the same id (slurmctld state lost)
            code, _, sig = parts[2].partition(":")
            state = STATE_MAP.get(parts[1].split()[0], FAILED)
            exit_code = 128 + int(sig) if sig not in ("", "0") else int(code or 0)
            out[parts[0]] = [state, parts[1], exit_code, _ts(parts[3]), _ts(parts[4])]
        return out

    async def status(self, refs: list[JobRef]) -> dict[str, BackendStatus]:
        if not refs:
            return {}
        queue = await self._squeue()
        missing = [r.backend_id for r in refs if r.backend_id not in queue and r.array_size == 1
                   and 0 not in self._load_cache(r.backend_id)]
        finished = await self._sacct(missing) if missing else {}
        never = []
        now = time.time()
        out = {}
        for ref in refs:
            bid = ref.backend_id
            cache = self._load_cache(bid)
            seen = queue.get(bid, {})
            rows, dirty = [], False
            for idx in range(ref.array_size):
                row = cache.get(idx) or seen.get(idx)
                if row is None and ref.array_size == 1:
                    row = finished.get(bid)
                if row is None:
                    row = [LOST, "no longer known to Slurm", None, None, None]
                if row[0] == PENDING and row[1] == "DependencyNeverSatisfied":
                    never.append(bid)
                    row = [CANCELLED, "DependencyNeverSatisfied", None, None, now]
                if row[0] in TERMINAL_STATES and idx not in cache and row[0] != LOST:
                    cache[idx], dirty = row, True
                rows.append(row)
            if dirty:
                self._save_cache(bid)
            state, counts = summarize([r[0] for r in rows])
            st = BackendStatus(state, counts=counts)
            starts = [r[3] for r in rows if r[3]]
            st.started_at = min(starts) if starts else None
            for idx, r in enumerate(rows):
                if r[3]:
                    st.task_seconds += max(0.0, (r[4] or now) - r[3])
                if r[0] in (FAILED, LOST, CANCELLED) and st.failed_index is None:
                    st.failed_index, st.exit_code = idx, r[2]
                    st.reason = r[1] if r[1] not in ("None", "") else r[0]
            if state in TERMINAL_STATES:
                ends = [r[4] for r in rows if r[4]]
                st.ended_at = max(ends) if ends else now
                if state == SUCCEEDED:
                    st.exit_code = 0
            out[bid] = st
        if never:
            await self._run([self._bin("scancel"), *sorted(set(never))], ok_codes=(0, 1))
        return out

    # --- cancel / logs / list ------------------------------------------------------------
    async def cancel(self, ref: JobRef) -> None:
        await self._run([self._bin("scancel"), ref.backend_id])

    async def logs(self, ref: JobRef, index: int | None = None, tail: int | None = None) -> str:
        outdir = self._outdir(ref.lens_id)
        if not outdir.is_dir():
            raise JobNotFound(ref.lens_id)
        name = (f"slurm-{ref.backend_id}_{index or 0}.out" if ref.array_size > 1
                else f"slurm-{ref.backend_id}.out")
        self.calls["logs"] += 1
        acct = unix_account(ref.user, self.user_template)
        return read_user_file(outdir / name, acct.uid, tail)

    async def list(self) -> list[str]:
        text = await self._run([self._bin("squeue"), "--noheader", "--states=all",
                                "--Format=ArrayJobID:|,Comment:|"])
        ids = set()
        for line in text.splitlines():
            bid, _, comment = line.partition("|")
            if comment.startswith("lens:"):
                ids.add(bid.strip())
        return sorted(ids)


def read_user_file(path: Path, uid: int, tail: int | None = None) -> str:
    """Read the end of an output file in a user-writable directory (``tail`` lines, at most
    ``MAX_LOG_BYTES``) without following links: the user could otherwise point it at a file
    only the service may read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise BackendError(f"refusing to read {path.name}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or (os.geteuid() == 0 and st.st_uid != uid):
            raise BackendError(f"refusing to read {path.name}: not the job's own output file")
        return read_tail(f, tail)


def _ts(text: str) -> float | None:
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
