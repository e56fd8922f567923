"""Start admission: spawns beyond what the machine can start at once wait in line.

A burst of logins (a class pressing Start together) would otherwise start every
server at once: on a small machine each start then takes so long that the hub's
timeouts fail most of them. Instead each start carries a cost (the CPU-seconds
its profile takes to reach ready) and starts run only while the costs in flight
fit the capacity (CPU-seconds the machine takes on at once). Everyone else
waits, first come first served, and sees their place and an estimate.

The queue lives in the hub's process (one hub, one event loop); it holds no
state across hub restarts (a restart drops pending spawns anyway).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field

DEFAULT_START_COST = 3.0  # CPU-seconds of a JupyterLab server start (benchmarks/server_start.py)
SECONDS_PER_CORE = 6.0  # default capacity: this many CPU-seconds of starts per core at once


def machine_cores() -> int:
    """Cores this process may use (the affinity mask, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_capacity(cores: int) -> float:
    """CPU-seconds of starts admitted at once: a few lab starts per core, so a start's
    processes overlap each other's I/O while every admitted start still finishes in
    seconds, far inside the hub's timeouts."""
    return SECONDS_PER_CORE * max(1, cores)


def wait_estimate(cost_ahead: float, cost_in_flight: float, capacity: float, cores: int,
                  mean_start_seconds: float | None) -> float:
    """Seconds until a waiting start is admitted.

    While there is a line the machine runs a full capacity of starts, which drains
    at ``capacity / mean_start_seconds`` units of cost per second (measured on this
    hub). Everything ahead must drain, and on average half of what runs now; before
    any start has finished, the CPU-bound guess (``cores`` units per second) stands in.
    """
    rate = capacity / mean_start_seconds if mean_start_seconds else float(max(1, cores))
    return max(0.0, (cost_ahead + cost_in_flight / 2) / max(rate, 1e-6))


def eta_text(seconds: float) -> str:
    """A wait for people: "5 s", "40 s", "3 min"."""
    if seconds < 60:
        return f"{max(1, round(seconds / 5) * 5 if seconds >= 10 else round(seconds))} s"
    return f"{round(seconds / 60)} min"


def load_timeout(base: float, cost_in_flight: float, cores: int, floor_per_cost: float = 3.0) -> int:
    """A deadline for an admitted start that grows with what runs beside it: the
    configured one, or three times the CPU-bound time of the load, whichever is longer
    (whole seconds: the hub's timeouts are Integer traits)."""
    return math.ceil(max(base, floor_per_cost * cost_in_flight / max(1, cores) + 30.0))


@dataclass
class Ticket:
    """One spawn's place: waiting until ``admitted`` is set, then running."""

    cost: float
    label: str
    seq: int
    admitted: asyncio.Event = field(default_factory=asyncio.Event)
    enqueued_at: float = field(default_factory=time.monotonic)
    admitted_at: float | None = None
    released: bool = False


@dataclass(frozen=True)
class Place:
    """Where a waiting ticket stands: ``position`` of ``waiting`` (1-based), and
    about how long until it starts."""

    position: int
    waiting: int
    eta_seconds: float
    running: int


class AdmissionQueue:
    """First-come admission of starts whose costs fit a capacity (see module docstring).

    A start bigger than the whole capacity still runs, alone, when nothing else does.
    """

    def __init__(self, capacity: float, cores: int | None = None):
        self.capacity = max(0.0, float(capacity))
        self.cores = cores or machine_cores()
        self._waiting: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._seq = itertools.count()
        self._mean_start: float | None = None  # EWMA of admitted starts' wall seconds

    # -- introspection -----------------------------------------------------
    @property
    def in_flight(self) -> float:
        return sum(t.cost for t in self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def place(self, ticket: Ticket) -> Place | None:
        """The ticket's place in line, or None once it is admitted (or gone)."""
        ahead = 0.0
        for pos, t in enumerate(self._waiting, 1):
            if t is ticket:
                eta = wait_estimate(ahead, self.in_flight, self.capacity, self.cores, self._mean_start)
                return Place(pos, len(self._waiting), eta, len(self._running))
            ahead += t.cost
        return None

    # -- admission -------------------------------------------------------------
    def enqueue(self, cost: float, label: str = "") -> Ticket:
        ticket = Ticket(cost=max(0.0, float(cost)), label=label, seq=next(self._seq))
        self._waiting.append(ticket)
        self._admit()
        return ticket

    async def wait(self, ticket: Ticket) -> None:
        """Return once the ticket is admitted; cancelling leaves the line."""
        try:
            await ticket.admitted.wait()
        except BaseException:
            self.release(ticket, finished=False)
            raise

    def release(self, ticket: Ticket, finished: bool = True) -> None:
        """The start is over (ready, failed or cancelled): its capacity goes to the next."""
        if ticket.released:
            return
        ticket.released = True
        if ticket in self._waiting:
            self._waiting.remove(ticket)
        elif ticket in self._running:
            self._running.remove(ticket)
            if finished and ticket.admitted_at is not None:
                took = time.monotonic() - ticket.admitted_at
                self._mean_start = took if self._mean_start is None else 0.7 * self._mean_start + 0.3 * took
        self._admit()

    def _admit(self) -> None:
        while self._waiting:
            head = self._waiting[0]
            fits = self.in_flight + head.cost <= self.capacity + 1e-9
            if not (fits or not self._running):
                return  # strictly first come: nobody overtakes the head of the line
            self._waiting.popleft()
            head.admitted_at = time.monotonic()
            self._running.append(head)
            head.admitted.set()


_queues: dict[float, AdmissionQueue] = {}


def hub_queue(capacity: float) -> AdmissionQueue:
    """The hub's one queue (per configured capacity, so tests with two settings coexist)."""
    queue = _queues.get(capacity)
    if queue is None:
        queue = _queues[capacity] = AdmissionQueue(capacity)
    return queue
