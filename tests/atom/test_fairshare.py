"""The local backend's choice of which waiting task starts next (atom/fairshare.py)."""

from __future__ import annotations

import itertools

from jupyter_ext.atom.fairshare import fair_pick


def test_a_newcomer_gets_the_next_free_slot():
    # alice holds both slots with a huge array; bob arrives with one job
    picks = fair_pick({"alice": (f"a{i}" for i in itertools.count()), "bob": ["b0"]},
                      {"alice": 2}, slots=1)
    assert picks == [("bob", "b0")]


def test_shares_round_robin_from_zero_in_queue_order():
    picks = fair_pick({"alice": ["a0", "a1", "a2"], "bob": ["b0", "b1"], "carol": ["c0"]},
                      {}, slots=5)
    assert picks == [("alice", "a0"), ("bob", "b0"), ("carol", "c0"), ("alice", "a1"),
                     ("bob", "b1")]


def test_fewest_running_first_then_equal_shares():
    picks = fair_pick({"alice": ["a0", "a1", "a2", "a3"], "bob": ["b0", "b1", "b2", "b3"]},
                      {"alice": 3, "bob": 0}, slots=4)
    # bob catches up to alice's 3 first, then they alternate (alice listed first)
    assert picks == [("bob", "b0"), ("bob", "b1"), ("bob", "b2"), ("alice", "a0")]


def test_an_exhausted_queue_gives_its_turn_away():
    picks = fair_pick({"alice": ["a0"], "bob": ["b0", "b1", "b2"]}, {}, slots=10)
    assert picks == [("alice", "a0"), ("bob", "b0"), ("bob", "b1"), ("bob", "b2")]


def test_no_slots_or_no_work():
    assert fair_pick({"alice": ["a0"]}, {}, slots=0) == []
    assert fair_pick({"alice": [], "bob": iter(())}, {"alice": 1}, slots=3) == []
    assert fair_pick({}, {"alice": 5}, slots=3) == []


def test_queues_are_consumed_only_as_far_as_picked():
    consumed = []

    def queue(owner):
        for i in itertools.count():
            consumed.append((owner, i))
            yield i

    fair_pick({"alice": queue("alice"), "bob": queue("bob")}, {}, slots=3)
    assert consumed == [("alice", 0), ("bob", 0), ("alice", 1)]  # 10,000 members cost nothing
