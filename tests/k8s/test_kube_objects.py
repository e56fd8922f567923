"""kube_objects: pure catalog -> kubespawner_override mapping."""

from __future__ import annotations

from spawners.kube_objects import PodLayout, merge_overrides, profile_overrides
from spawners.profiles import parse_catalog

CATALOG = parse_catalog(
    {
        "profiles": [
            {
                "slug": "small", "display_name": "Small", "description": "d", "image": "img:1",
                "cpu": {"limit": 1}, "memory": {"limit": "2G"}, "hourly_cost": 0.1,
                "instance_type": "m6i.large", "node_selector": {"pool": "user"},
                "kubespawner_override": {"extra_labels": {"team": "a"}, "node_selector": {"pool": None},
                                         "lifecycle_hooks": {"postStart": {"exec": {"command": ["true"]}}}},
            },
            {
                "slug": "gpu2", "display_name": "Two GPUs", "description": "d", "image": "img:g",
                "gpu": {"count": 2, "type": "h100"}, "instance_type": "p5.4xlarge", "hourly_cost": 9.0,
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "x", "effect": "NoSchedule"}],
            },
        ]
    }
)


def test_merge_overrides_is_deep_and_keeps_none_as_the_deletion_marker():
    base = {"a": {"x": 1, "y": 2}, "b": [1], "c": 3}
    merged = merge_overrides(base, {"a": {"y": None, "z": 3}, "b": [2], "c": None})
    assert merged == {"a": {"x": 1, "y": None, "z": 3}, "b": [2], "c": None}
    assert base == {"a": {"x": 1, "y": 2}, "b": [1], "c": 3}  # not mutated


def test_catalog_override_wins_last():
    small = profile_overrides(CATALOG.get("small"), PodLayout())
    assert small["extra_labels"] == {"lens.io/profile": "small", "team": "a"}
    # the profile's own override replaced the key by kubespawner's deletion marker
    assert small["node_selector"] == {"pool": None}
    assert small["lifecycle_hooks"]["postStart"]["exec"]["command"] == ["true"]
    assert "cpu_guarantee" not in small and small["cpu_limit"] == 1  # unset stays at the config value
    assert small["mem_limit"] == 2_000_000_000


def test_pin_instance_type_and_no_shared_volume():
    small = profile_overrides(CATALOG.get("small"), PodLayout(pin_instance_type=True))
    assert small["node_selector"]["node.kubernetes.io/instance-type"] == "m6i.large"
    assert [v["name"] for v in small["volumes"]] == ["home"]


def test_gpu_count_and_an_existing_gpu_toleration_is_kept():
    gpu = profile_overrides(CATALOG.get("gpu2"), PodLayout(gpu_type_label="example.com/gpu"))
    assert gpu["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert gpu["extra_resource_guarantees"] == {"nvidia.com/gpu": "2"}
    assert gpu["node_selector"] == {"example.com/gpu": "h100", "node.kubernetes.io/instance-type": "p5.4xlarge"}
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]
