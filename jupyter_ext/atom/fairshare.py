"""Fair sharing of a queue's free slots between users (the local backend's scheduler).

First come, first served lets one user's 10,000-member array hold every slot until it
drains, while another user's single job waits behind it. Here each free slot goes to the
user with the fewest tasks running (counting the slots given out in the same step); ties
go to the user listed first, and the caller lists first the user served longest ago (the
local backend: the user whose last task started in the earliest step; never served comes
first, then the oldest job). So a user who arrives while another holds every slot gets the
next free one, and users with work waiting take turns: within one step, and across steps
that free one slot each.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


def fair_pick(queues: Mapping[Hashable, Iterable[T]], running: Mapping[Hashable, int],
              slots: int) -> list[tuple[Hashable, T]]:
    """Choose up to ``slots`` tasks to start, as ``(owner, task)`` in launch order.

    ``queues``: owner -> that owner's waiting tasks in the owner's own order (oldest job
    first); iterables are consumed lazily, only as far as tasks are picked, so a generator
    over a huge array costs nothing for the members it does not reach. The mapping's order
    breaks ties (list the user served longest ago first). ``running``: owner -> tasks
    running now (owners missing count 0).
    """
    heap = []
    for order, (owner, tasks) in enumerate(queues.items()):
        heap.append((running.get(owner, 0), order, owner, iter(tasks)))
    heapq.heapify(heap)
    picked: list[tuple[Hashable, T]] = []
    while heap and len(picked) < slots:
        count, order, owner, tasks = heapq.heappop(heap)
        task = next(tasks, _END)
        if task is _END:
            continue  # this owner has nothing (more) that may start
        picked.append((owner, task))
        heapq.heappush(heap, (count + 1, order, owner, tasks))
    return picked


_END = object()
