"""Pre-warmed classes on Kubernetes, the pure part (jupyter_ext/workshop/placeholders.py):
how many placeholders, when up and when down, the scale body, the plans file."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta
from fractions import Fraction

import pytest

from jupyter_ext.workshop import placeholders as ph

STARTS = datetime(2026, 12, 5, 9, 0)
SPEC_JSON = json.dumps({
    "statefulset": "user-placeholder", "namespace": "lens", "requests": {"cpu": "500m", "memory": "1G"},
    "nodeSelector": {"lens.io/pool": "user"}, "baseReplicas": 2, "maxReplicas": 30,
    "prepulledImages": ["ghcr.io/lens-hub/notebook:0.1.0"],
})
SPEC = ph.PlaceholderSpec.from_json(SPEC_JSON)


def test_spec_from_the_chart_json():
    assert (SPEC.statefulset, SPEC.namespace) == ("user-placeholder", "lens")
    assert SPEC.cpu == Fraction(1, 2) and SPEC.memory == 10**9
    assert SPEC.node_selector == {"lens.io/pool": "user"}
    assert (SPEC.base_replicas, SPEC.max_replicas) == (2, 30)
    assert SPEC.prepulled_images == ("ghcr.io/lens-hub/notebook:0.1.0",)
    raw = json.loads(SPEC_JSON)
    for broken, why in [("not json", "not the chart's placeholder spec"),
                        (json.dumps({**raw, "requests": {"cpu": "1"}}), "memory"),
                        (json.dumps({**raw, "requests": {"cpu": "0", "memory": "1G"}}), "must request cpu and memory"),
                        (json.dumps({**raw, "requests": {"cpu": "lots", "memory": "1G"}}), "not a CPU quantity"),
                        (json.dumps({**raw, "baseReplicas": 31}), "baseReplicas")]:
        with pytest.raises(ph.PlaceholderError, match=why):
            ph.PlaceholderSpec.from_json(broken)


@pytest.mark.parametrize("text,cores", [("500m", Fraction(1, 2)), ("2", 2), (1.5, Fraction(3, 2)), ("0.1", Fraction(1, 10))])
def test_parse_cpu(text, cores):
    assert ph.parse_cpu(text) == cores


@pytest.mark.parametrize("bad", ["-1", "1x", True, ""])
def test_parse_cpu_refuses(bad):
    with pytest.raises(ValueError):
        ph.parse_cpu(bad)


@pytest.mark.parametrize("seats,cpu,memory,expected", [
    (40, 0.5, 10**9, 40),            # a lab pod is one placeholder
    (40, 1, 2 * 10**9, 80),          # twice the room
    (40, 0.5, 4 * 10**9, 160),       # memory is what binds
    (40, 2, 10**9, 160),             # cpu is what binds
    (3, 0.1, 10**8, 1),              # small pods share one: 0.3 CPU, 0.3 GB of a 0.5 CPU, 1 GB placeholder
    (7, 0.3, 0, 5),                  # 2.1 / 0.5 = 4.2 -> 5; float 0.3 read exactly
    (5, None, None, 5),              # no requests: one per seat (z2jh's rule)
    (0, 0.5, 10**9, 0),
])
def test_placeholders_for(seats, cpu, memory, expected):
    assert ph.placeholders_for(seats, cpu, memory, SPEC) == expected


def test_placement():
    assert ph.placement_problem("lab", {"lens.io/pool": "user"}, 0, SPEC) is None
    assert ph.placement_problem("any", {}, 0, SPEC) is None  # any node suits it: the placeholders' do
    gpu = ph.placement_problem("gpu", {"lens.io/pool": "gpu"}, 1, SPEC)
    assert "requests a GPU" in gpu and "minimum size" in gpu
    other = ph.placement_problem("big", {"lens.io/pool": "bigmem"}, 0, SPEC)
    assert "lens.io/pool=bigmem" in other and "lens.io/pool=user" in other


def plan(name="bio101", placeholders=10, starts=STARTS, lead=20, grace=30):
    return ph.make_plan(name, "lab", placeholders, placeholders, starts=starts, lead=timedelta(minutes=lead),
                        grace=timedelta(minutes=grace), spec=SPEC)


def test_plan_window_and_cap():
    p = plan()
    assert p.scale_up_at == datetime(2026, 12, 5, 8, 40) and p.scale_down_at == datetime(2026, 12, 5, 9, 30)
    assert ph.make_plan("x", "lab", 4, 4, starts=STARTS, grace=timedelta(0), spec=SPEC).scale_up_at == \
        STARTS - ph.DEFAULT_LEAD
    assert plan(placeholders=28).placeholders == 28  # 2 always there + 28 = the cap
    with pytest.raises(ph.PlaceholderError, match="more than the chart allows.*maxPlaceholders"):
        plan(placeholders=29)


def test_desired_replicas_over_a_day():
    """Up `lead` before the start, down `grace` after it; plans add up, capped; the base stays."""
    a = plan("a", 10)
    b = plan("b", 15, starts=STARTS + timedelta(minutes=30))
    plans = [a, b]
    at = lambda h, m: ph.desired_replicas(plans, SPEC, datetime(2026, 12, 5, h, m))  # noqa: E731
    assert at(8, 39) == 2                 # before a's lead: the chart's own 2
    assert at(8, 40) == 12                # a up
    assert at(9, 10) == 2 + 10 + 15 == 27 # b up too (its start is 9:30)
    assert at(9, 30) == 17                # a down at 9:30, b still up
    assert at(10, 0) == 2                 # b down at 10:00
    big = [plan("c", 20), plan("d", 20)]
    assert ph.desired_replicas(big, SPEC, STARTS) == 30  # capped at maxReplicas


def test_scale_patch_body():
    assert ph.scale_patch(12) == {"spec": {"replicas": 12}}
    assert ph.scale_patch(0) == {"spec": {"replicas": 0}}
    assert ph.MERGE_PATCH == "application/merge-patch+json"
    for bad in (-1, 1.5, "3", True, None):
        with pytest.raises(ValueError):
            ph.scale_patch(bad)


def test_plans_file(tmp_path):
    now = STARTS - timedelta(hours=3)
    assert ph.read_plans(tmp_path) == []
    ph.write_plan(tmp_path, plan("a", 3), now)
    ph.write_plan(tmp_path, plan("b", 4), now)
    recorded = ph.write_plan(tmp_path, plan("a", 5), now)  # a re-run replaces the workshop's plan
    assert sorted((p.workshop, p.placeholders) for p in recorded) == [("a", 5), ("b", 4)]
    assert sorted((p.workshop, p.placeholders) for p in ph.read_plans(tmp_path)) == [("a", 5), ("b", 4)]
    path = ph.plans_path(tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # plans that ended are dropped at the next write
    later = STARTS + timedelta(hours=1)
    ph.write_plan(tmp_path, plan("c", 1, starts=later + timedelta(hours=1)), later)
    assert [p.workshop for p in ph.read_plans(tmp_path)] == ["c"]
    # a broken entry is skipped, a broken file is no plan (nothing scaled up)
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "bad": {"profile": "lab"}}))
    assert [p.workshop for p in ph.read_plans(tmp_path)] == ["c"]
    path.write_text("{")
    assert ph.read_plans(tmp_path) == []
