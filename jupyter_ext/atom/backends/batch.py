"""The AWS Batch backend (boto3).

- job definitions per app/version/arch (or per image) are registered idempotently;
- the queue is chosen by arch and spot/on-demand from configuration;
- submissions use containerOverrides, arrayProperties, dependsOn and, for multi-node MPI,
  nodeOverrides; jobs are tagged lens:user, lens:group, lens:job, lens:project;
- status: describe_jobs with up to 100 ids per call, jittered backoff on throttling;
- logs: CloudWatch Logs.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
import re
import time
from collections.abc import Callable
from typing import Any

from traitlets import Dict, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import SpecError
from ..script import params_case
from .base import (
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    BackendStatus,
    JobRef,
    Submission,
    tail_lines,
)

THROTTLE_CODES = ("TooManyRequestsException", "ThrottlingException", "Throttling")
CANCEL_REASON = "lens: cancelled by the user"
STATUS_MAP = {"SUBMITTED": PENDING, "PENDING": PENDING, "RUNNABLE": PENDING,
              "STARTING": PENDING, "RUNNING": RUNNING, "SUCCEEDED": SUCCEEDED, "FAILED": FAILED}
DESCRIBE_MAX = 100


def call_with_backoff(fn: Callable[[], Any], *, retries: int = 8, base: float = 0.1,
                      cap: float = 5.0, sleep: Callable[[float], None] = time.sleep,
                      rng: Callable[[], float] = random.random,
                      counter: collections.Counter | None = None) -> Any:
    """Call ``fn``; on a throttling error sleep rng() x min(cap, base x 2^attempt)
    ("full jitter") and retry, at most ``retries`` times."""
    from botocore.exceptions import ClientError

    for attempt in range(retries + 1):
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in THROTTLE_CODES or attempt == retries:
                raise
            if counter is not None:
                counter["throttled"] += 1
            sleep(rng() * min(cap, base * 2 ** attempt))


def definition_name(prefix: str, app: str | None, version: str | None, image: str,
                    arch: str, multinode: bool) -> str:
    if app:
        stem = f"{app}-{version}"
    else:
        stem = "image-" + hashlib.sha256(image.encode()).hexdigest()[:16]
    name = f"{prefix}-{stem}-{arch}" + ("-mnp" if multinode else "")
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:128]


def job_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:128]


def container_command(sub: Submission) -> list[str]:
    """The container command: the argv literally, or the user's script through sh -c; array
    members get LENS_ARRAY_INDEX and their parameters from a quoted ``case`` wrapper."""
    spec = sub.spec
    if spec.script is not None:
        body = spec.script
        argv: list[str] = []
    else:
        body = 'exec "$@"'
        argv = list(spec.command)
    if spec.array and spec.array.size > 1:
        params = [spec.array.params_for(i) for i in range(spec.array.size)] if spec.array.params else []
        pre = ['export LENS_ARRAY_INDEX="${AWS_BATCH_JOB_ARRAY_INDEX:-0}"']
        pre += params_case(params, "AWS_BATCH_JOB_ARRAY_INDEX")
        return ["/bin/sh", "-c", "\n".join(pre + [body]), "lens-job", *argv]
    if spec.script is not None:
        return ["/bin/sh", "-c", body, "lens-job"]
    return argv


def resource_requirements(spec) -> list[dict[str, str]]:
    req = [{"type": "VCPU", "value": str(spec.vcpus)},
           {"type": "MEMORY", "value": str(spec.memory_mib)}]
    if spec.gpus:
        req.append({"type": "GPU", "value": str(spec.gpus)})
    return req


def submit_kwargs(sub: Submission, queue: str, definition_arn: str) -> dict[str, Any]:
    """The submit_job request (pure)."""
    spec = sub.spec
    for _bid, kind in sub.depends_on:
        if kind != "afterok":
            raise SpecError("depends_on.type", "AWS Batch runs a dependent job only after "
                            "its dependencies succeed", "afterok")
    overrides = {"command": container_command(sub),
                 "environment": [{"name": k, "value": v} for k, v in sorted(sub.env.items())],
                 "resourceRequirements": resource_requirements(spec)}
    kw: dict[str, Any] = {
        "jobName": job_name(spec.name), "jobQueue": queue, "jobDefinition": definition_arn,
        "tags": dict(sub.tags), "propagateTags": True,
        "timeout": {"attemptDurationSeconds": max(60, spec.walltime_s)},
    }
    if sub.depends_on:
        kw["dependsOn"] = [{"jobId": bid} for bid, _ in sub.depends_on]
    if spec.array and spec.array.size > 1:
        kw["arrayProperties"] = {"size": spec.array.size}
    if spec.nodes > 1:
        kw["nodeOverrides"] = {"numNodes": spec.nodes, "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": overrides}]}
    else:
        kw["containerOverrides"] = overrides
    return kw


def _secs(ms: int | None) -> float | None:
    return ms / 1000.0 if ms else None


def job_status(desc: dict[str, Any], children: list[dict[str, Any]] | None = None) -> BackendStatus:
    """BackendStatus from a describe_jobs entry (and, for finished arrays, its children)."""
    state = STATUS_MAP.get(desc.get("status"), PENDING)
    reason = desc.get("statusReason") or ""
    if state == FAILED and reason.startswith(CANCEL_REASON):
        state = CANCELLED
    st = BackendStatus(state, reason=reason)
    summary = (desc.get("arrayProperties") or {}).get("statusSummary")
    if summary:
        st.counts = {STATUS_MAP.get(k, PENDING): 0 for k in summary}
        for k, v in summary.items():
            st.counts[STATUS_MAP.get(k, PENDING)] += v
        st.counts = {k: v for k, v in st.counts.items() if v}
    st.started_at = _secs(desc.get("startedAt"))
    now = time.time()
    if children:
        starts = [_secs(c.get("startedAt")) for c in children if c.get("startedAt")]
        st.started_at = min(starts) if starts else st.started_at
        for c in sorted(children, key=lambda c: int(c["jobId"].rsplit(":", 1)[-1])):
            s, e = _secs(c.get("startedAt")), _secs(c.get("stoppedAt"))
            if s:
                st.task_seconds += max(0.0, (e or now) - s)
            if c.get("status") == "FAILED" and st.failed_index is None:
                st.failed_index = int(c["jobId"].rsplit(":", 1)[-1])
                st.exit_code = (c.get("container") or {}).get("exitCode")
                st.reason = c.get("statusReason") or reason or "FAILED"
    elif st.started_at:
        st.task_seconds = max(0.0, (_secs(desc.get("stoppedAt")) or now) - st.started_at)
        if state in (FAILED, CANCELLED):
            st.exit_code = (desc.get("container") or {}).get("exitCode")
            st.failed_index = 0
    if state in (FAILED, CANCELLED) and st.failed_index is None:
        st.failed_index = 0
        st.exit_code = (desc.get("container") or {}).get("exitCode")
    if state in TERMINAL_STATES:
        st.ended_at = _secs(desc.get("stoppedAt")) or now
        if state == SUCCEEDED:
            st.exit_code = 0
    if not st.reason and state == FAILED:
        st.reason = "FAILED"
    return st


class BatchBackend(LoggingConfigurable):
    """Submit atom jobs to AWS Batch on the users' behalf (users hold no AWS credentials)."""

    name = "batch"
    region = Unicode("us-east-1", help="AWS region of the queues.").tag(config=True)
    endpoint_url = Unicode("", help="Override the Batch/Logs endpoint ('' = boto3 default, "
                           "which honours AWS_ENDPOINT_URL).").tag(config=True)
    queues = Dict(
        {"*:on-demand": "lens-ondemand", "*:spot": "lens-spot"},
        help="Job queue per '<arch>:<spot|on-demand>'; '*' matches any arch.",
    ).tag(config=True)
    default_image = Unicode(
        "public.ecr.aws/docker/library/python:3.11-slim",
        help="Image for jobs that give a command but neither an app nor an image.",
    ).tag(config=True)
    definition_prefix = Unicode("lens", help="Prefix of registered job definitions.").tag(config=True)
    job_role_arn = Unicode("", help="IAM role the containers run with ('' = none).").tag(config=True)
    log_group = Unicode("/aws/batch/job", help="CloudWatch log group of the jobs.").tag(config=True)
    max_retries = Integer(8, help="Retries on TooManyRequestsException.").tag(config=True)
    backoff_base = Float(0.1, help="First backoff ceiling in seconds (doubles).").tag(config=True)
    backoff_cap = Float(5.0, help="Largest backoff in seconds.").tag(config=True)
    node_rate_micro = Integer(None, allow_none=True,
                              help="Fixed node-hour price (None: EC2 price).").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        import boto3
        from botocore.config import Config

        cfg = Config(retries={"total_max_attempts": 1}, max_pool_connections=20)
        session = boto3.session.Session(region_name=self.region)
        extra = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        self.client = session.client("batch", config=cfg, **extra)
        self.logs_client = session.client("logs", config=cfg, **extra)
        self.calls: collections.Counter = collections.Counter()
        self._definitions: dict[str, str] = {}

    def _call(self, op: str, **kwargs) -> Any:
        client = self.logs_client if op in ("get_log_events",) else self.client

        def once():
            self.calls[op] += 1
            return getattr(client, op)(**kwargs)

        return call_with_backoff(once, retries=self.max_retries, base=self.backoff_base,
                                 cap=self.backoff_cap, counter=self.calls)

    async def _acall(self, op: str, **kwargs) -> Any:
        return await asyncio.to_thread(self._call, op, **kwargs)

    # --- definitions and queues ----------------------------------------------------------
    def queue_for(self, arch: str, spot: bool) -> str:
        pricing = "spot" if spot else "on-demand"
        for key in (f"{arch}:{pricing}", f"*:{pricing}"):
            if key in self.queues:
                return self.queues[key]
        raise SpecError("spot", f"no Batch queue for {arch} {pricing}",
                        ", ".join(sorted(self.queues)))

    def ensure_definition(self, sub: Submission) -> str:
        """Register (once) the job definition for the app/version/arch or image."""
        spec = sub.spec
        image = sub.image or self.default_image
        multinode = spec.nodes > 1
        name = definition_name(self.definition_prefix, spec.app, spec.version, image,
                               spec.arch, multinode)
        if name in self._definitions:
            return self._definitions[name]
        container = {"image": image, "command": ["true"],
                     "resourceRequirements": [{"type": "VCPU", "value": "1"},
                                              {"type": "MEMORY", "value": "2048"}]}
        if self.job_role_arn:
            container["jobRoleArn"] = self.job_role_arn
        found = self._call("describe_job_definitions", jobDefinitionName=name, status="ACTIVE")
        for d in sorted(found.get("jobDefinitions", []), key=lambda d: -d["revision"]):
            props = d.get("containerProperties") or (
                (d.get("nodeProperties") or {}).get("nodeRangeProperties") or [{}])[0].get(
                "container", {})
            if props.get("image") == image and d.get("type") == (
                    "multinode" if multinode else "container"):
                self._definitions[name] = d["jobDefinitionArn"]
                return d["jobDefinitionArn"]
        kw: dict[str, Any] = {"jobDefinitionName": name,
                              "tags": {"lens:managed": "true"}, "propagateTags": True}
        if multinode:
            kw.update(type="multinode", nodeProperties={
                "numNodes": 2, "mainNode": 0,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": container}]})
        else:
            kw.update(type="container", containerProperties=container)
        arn = self._call("register_job_definition", **kw)["jobDefinitionArn"]
        self._definitions[name] = arn
        return arn

    # --- the interface -------------------------------------------------------------------
    def _submit(self, sub: Submission) -> str:
        queue = self.queue_for(sub.spec.arch, sub.spec.spot)
        kw = submit_kwargs(sub, queue, self.ensure_definition(sub))
        return self._call("submit_job", **kw)["jobId"]

    async def submit(self, sub: Submission) -> str:
        return await asyncio.to_thread(self._submit, sub)

    def _children(self, bid: str) -> list[dict[str, Any]]:
        out, token = [], None
        while True:
            kw = {"arrayJobId": bid, **({"nextToken": token} if token else {})}
            page = self._call("list_jobs", **kw)
            out += page.get("jobSummaryList", [])
            token = page.get("nextToken")
            if not token:
                return out

    def _status(self, refs: list[JobRef]) -> dict[str, BackendStatus]:
        ids = [r.backend_id for r in refs]
        sizes = {r.backend_id: r.array_size for r in refs}
        out: dict[str, BackendStatus] = {}
        for i in range(0, len(ids), DESCRIBE_MAX):
            for desc in self._call("describe_jobs", jobs=ids[i:i + DESCRIBE_MAX])["jobs"]:
                bid = desc["jobId"]
                children = None
                if sizes.get(bid, 1) > 1 and desc.get("status") in ("SUCCEEDED", "FAILED"):
                    children = self._children(bid)  # once, when the array has finished
                out[bid] = job_status(desc, children)
        return out

    async def status(self, refs: list[JobRef]) -> dict[str, BackendStatus]:
        return await asyncio.to_thread(self._status, refs) if refs else {}

    async def cancel(self, ref: JobRef) -> None:
        await self._acall("terminate_job", jobId=ref.backend_id, reason=CANCEL_REASON)

    def _logs(self, ref: JobRef, index: int | None, tail: int | None) -> str:
        from botocore.exceptions import ClientError

        target = ref.backend_id if ref.array_size == 1 else f"{ref.backend_id}:{index or 0}"
        jobs = self._call("describe_jobs", jobs=[target])["jobs"]
        if not jobs:
            return ""
        desc = jobs[0]
        stream = (desc.get("container") or {}).get("logStreamName")
        for attempt in reversed(desc.get("attempts") or []):
            stream = stream or (attempt.get("container") or {}).get("logStreamName")
        if not stream:
            return ""
        try:
            events = self._call("get_log_events", logGroupName=self.log_group,
                                logStreamName=stream, startFromHead=False,
                                limit=min(10000, tail or 10000))["events"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return ""
            raise
        text = "".join(e["message"].rstrip("\n") + "\n" for e in events)
        return tail_lines(text, tail)

    async def logs(self, ref: JobRef, index: int | None = None, tail: int | None = None) -> str:
        return await asyncio.to_thread(self._logs, ref, index, tail)

    def _list(self) -> list[str]:
        ids = set()
        for queue in sorted(set(self.queues.values())):
            for status in STATUS_MAP:
                token = None
                while True:
                    kw = {"jobQueue": queue, "jobStatus": status,
                          **({"nextToken": token} if token else {})}
                    page = self._call("list_jobs", **kw)
                    ids.update(j["jobId"] for j in page.get("jobSummaryList", []))
                    token = page.get("nextToken")
                    if not token:
                        break
        return sorted(ids)

    async def list(self) -> list[str]:
        return await asyncio.to_thread(self._list)

