"""The backend interface and the plain data passed across it.

A backend turns a validated :class:`Submission` into scheduler work and reports state in
batches. It never sees unvalidated user text: specs are parsed first, and every backend
builds argv lists or API structures (never a shell string).
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..spec import JobSpec

PENDING, RUNNING = "PENDING", "RUNNING"
SUCCEEDED, FAILED, CANCELLED, LOST = "SUCCEEDED", "FAILED", "CANCELLED", "LOST"
ACTIVE_STATES = (PENDING, RUNNING)
TERMINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, LOST)
MAX_LOG_BYTES = 1024 * 1024  # the most of a log file one read returns (from its end)
LOG_BLOCK = 64 * 1024


@dataclass(frozen=True)
class Submission:
    """One job for a backend; ``depends_on`` holds (backend_id, afterok|afterany)."""

    lens_id: str
    user: str
    groups: tuple[str, ...]
    spec: JobSpec
    image: str | None = None
    depends_on: tuple[tuple[str, str], ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # spec env + lens env, already valid


@dataclass(frozen=True)
class JobRef:
    """What a backend needs to look a job up again (also after a service restart)."""

    backend_id: str
    lens_id: str
    user: str
    array_size: int = 1


@dataclass
class BackendStatus:
    state: str
    reason: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    task_seconds: float = 0.0  # runtime summed over array members (for cost)
    counts: dict[str, int] = field(default_factory=dict)  # array members per state
    failed_index: int | None = None  # first failed array member

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@runtime_checkable
class Backend(Protocol):
    name: str
    calls: collections.Counter  # external calls made, by kind (for benchmarks)
    node_rate_micro: int | None  # fixed price per node-hour, or None: the instance price

    async def submit(self, sub: Submission) -> str: ...

    async def status(self, refs: list[JobRef]) -> dict[str, BackendStatus]: ...

    async def cancel(self, ref: JobRef) -> None: ...

    async def logs(self, ref: JobRef, index: int | None = None, tail: int | None = None) -> str: ...

    async def list(self) -> list[str]: ...


def summarize(task_states) -> tuple[str, dict[str, int]]:
    """Overall state of an array from its members' states: a list of states, or a mapping
    state -> number of members (a ``Counter``)."""
    counts = collections.Counter(task_states)
    if counts[RUNNING]:
        state = RUNNING
    elif counts[PENDING]:
        state = RUNNING if (counts[SUCCEEDED] or counts[FAILED]) else PENDING
    elif counts[FAILED] or counts[LOST]:
        state = FAILED if counts[FAILED] else LOST
    elif counts[CANCELLED]:
        state = CANCELLED
    else:
        state = SUCCEEDED
    return state, {k: v for k, v in counts.items() if v}


def read_tail(f, tail: int | None, max_bytes: int = MAX_LOG_BYTES) -> str:
    """The last ``tail`` lines (``None``: all) of the binary file ``f``, reading backwards
    from its end in blocks until enough lines are in, and never more than ``max_bytes``.
    A line cut by the byte cap is dropped (unless it is the only one)."""
    if tail is not None and tail <= 0:
        return ""
    end = os.fstat(f.fileno()).st_size
    chunks: list[bytes] = []
    got = newlines = 0
    while end > 0 and got < max_bytes:
        n = min(LOG_BLOCK, end, max_bytes - got)
        f.seek(end - n)
        data = f.read(n)
        if not data:  # truncated under us
            break
        chunks.append(data)
        got += len(data)
        end -= len(data)
        newlines += data.count(b"\n")
        if tail is not None and newlines > tail:
            break
    data = b"".join(reversed(chunks))
    if end > 0 and (tail is None or newlines <= tail):
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1:]
    return tail_lines(data.decode("utf-8", "replace"), tail)


def tail_lines(text: str, tail: int | None) -> str:
    if tail is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-tail:]) if tail > 0 else ""
