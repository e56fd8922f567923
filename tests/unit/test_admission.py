"""The start line (spawners/admission.py): first come, costs fit the capacity, estimates."""

import asyncio

import pytest

from spawners.admission import (
    AdmissionQueue,
    default_capacity,
    eta_text,
    load_timeout,
    wait_estimate,
)
from spawners.profiles import CatalogError, parse_catalog


def test_starts_fit_the_capacity_and_the_rest_wait_in_order():
    queue = AdmissionQueue(capacity=9, cores=2)
    tickets = [queue.enqueue(3, f"u{i}") for i in range(5)]
    assert [t.admitted.is_set() for t in tickets] == [True, True, True, False, False]
    assert queue.place(tickets[3]).position == 1 and queue.place(tickets[4]).position == 2
    assert queue.place(tickets[4]).waiting == 2 and queue.place(tickets[4]).running == 3
    assert queue.place(tickets[0]) is None  # admitted: no place in line
    queue.release(tickets[1])
    assert tickets[3].admitted.is_set() and not tickets[4].admitted.is_set()
    assert queue.place(tickets[4]).position == 1


def test_nobody_overtakes_the_head_of_the_line():
    queue = AdmissionQueue(capacity=6, cores=2)
    first = queue.enqueue(3)
    big = queue.enqueue(5)  # does not fit beside the first
    small = queue.enqueue(1)  # would fit, but must wait behind the big one
    assert first.admitted.is_set() and not big.admitted.is_set() and not small.admitted.is_set()
    queue.release(first)
    assert big.admitted.is_set() and small.admitted.is_set()


def test_a_start_bigger_than_the_capacity_runs_alone():
    queue = AdmissionQueue(capacity=4, cores=2)
    huge = queue.enqueue(10)
    after = queue.enqueue(1)
    assert huge.admitted.is_set() and not after.admitted.is_set()
    queue.release(huge)
    assert after.admitted.is_set()


def test_a_cancelled_wait_leaves_the_line_and_release_is_idempotent():
    async def scenario():
        queue = AdmissionQueue(capacity=3, cores=1)
        running = queue.enqueue(3)
        waiting = queue.enqueue(3)
        behind = queue.enqueue(3)
        task = asyncio.create_task(queue.wait(waiting))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert queue.place(behind).position == 1
        queue.release(running)
        queue.release(running)  # twice: no double credit
        assert behind.admitted.is_set() and queue.in_flight == 3
        await queue.wait(behind)

    asyncio.run(scenario())


def test_estimates_grow_with_the_line_and_learn_from_finished_starts():
    assert wait_estimate(0, 6, capacity=6, cores=2, mean_start_seconds=None) == pytest.approx(1.5)
    assert wait_estimate(12, 6, capacity=6, cores=2, mean_start_seconds=None) == pytest.approx(7.5)
    # measured: a full capacity (6) drains every 10 s -> 0.6 cost per second
    assert wait_estimate(12, 6, capacity=6, cores=2, mean_start_seconds=10) == pytest.approx(25)
    queue = AdmissionQueue(capacity=3, cores=1)
    first, second = queue.enqueue(3), queue.enqueue(3)
    before = queue.place(second).eta_seconds
    first.admitted_at -= 30  # it took 30 s
    queue.release(first)
    third = queue.enqueue(3)
    assert queue.place(third).eta_seconds > before


def test_timeouts_and_texts():
    assert default_capacity(2) == 12 and default_capacity(0) == 6
    assert load_timeout(60, 0, 2) == 60
    assert load_timeout(60, 60, 2) == 3 * 30 + 30
    assert eta_text(3.2) == "3 s" and eta_text(42) == "40 s" and eta_text(150) == "2 min"


def test_start_cost_in_the_catalog():
    base = {"slug": "lab", "display_name": "Lab", "description": "d", "interface": "lab", "image": "i",
            "hourly_cost": 0.1}
    assert parse_catalog({"profiles": [base]}).profiles[0].start_cost == 3.0
    assert parse_catalog({"profiles": [{**base, "start_cost": 7}]}).profiles[0].start_cost == 7.0
    for bad in (-1, "3", True, 1e9):
        with pytest.raises(CatalogError, match="start_cost"):
            parse_catalog({"profiles": [{**base, "start_cost": bad}]})
