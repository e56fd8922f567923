"""Pure functions: a catalog profile -> kubespawner's ``profile_list`` entry.

No Kubernetes client and no spawner here: ``profile_overrides`` maps one
:class:`~spawners.profiles.Profile` to the ``kubespawner_override`` dict that
``KubeProfileSpawner`` applies (and that ``profile_list`` shows), so the
result can be compared as plain data in tests, the way kubespawner tests
``make_pod``.

Precedence follows kubespawner: spawner config, then what the catalog's
typed fields say, then the profile's own ``kubespawner_override`` (merged
deeply). A ``None`` in an override is kept as kubespawner's deletion marker,
so that kubespawner's ``_apply_overrides`` removes the key from the
*configured* value too (``environment: {X: null}`` drops a configured X;
``mem_limit: null`` unsets a configured limit), as it does upstream.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .profile_options import to_kubespawner
from .profiles import Catalog, Profile

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
PROFILE_LABEL = "lens.io/profile"


@dataclass(frozen=True)
class PodLayout:
    """Where things live in a user pod; one per deployment (from spawner traits)."""

    home_mount_path: str = "/home/jovyan"
    home_volume_name: str = "home"
    home_claim: str = "{pvc_name}"  # kubespawner expands it per user
    shared_data_claim: str = ""  # empty: no shared data volume
    shared_data_mount_path: str = "/home/jovyan/shared"
    shared_data_read_only: bool = True
    gpu_type_label: str = "lens.io/gpu-type"
    pin_instance_type: bool = False


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of two overrides: dicts merge, other values replace.

    ``None`` replaces too: it stays in the result as the deletion marker that
    kubespawner's ``recursive_update`` (nested keys) or ``setattr`` (a trait)
    applies to the spawner's configured value; dropping it here would leave
    the configured value in place.
    """
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_overrides(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def node_selector(profile: Profile, layout: PodLayout) -> dict[str, str]:
    selector = dict(profile.node_selector)
    if profile.gpu_count and profile.gpu_type:
        selector.setdefault(layout.gpu_type_label, profile.gpu_type)
    if profile.instance_type and (layout.pin_instance_type or profile.gpu_count):
        selector.setdefault(INSTANCE_TYPE_LABEL, profile.instance_type)
    return selector


def tolerations(profile: Profile) -> list[dict[str, Any]]:
    result = [dict(t) for t in profile.tolerations]
    if profile.gpu_count and not any(t.get("key") == GPU_RESOURCE for t in result):
        result.append(dict(GPU_TOLERATION))
    return result


def volumes(layout: PodLayout) -> tuple[list[dict], list[dict]]:
    vols = [{"name": layout.home_volume_name, "persistentVolumeClaim": {"claimName": layout.home_claim}}]
    mounts = [{"name": layout.home_volume_name, "mountPath": layout.home_mount_path}]
    if layout.shared_data_claim:
        vols.append(
            {
                "name": "shared-data",
                "persistentVolumeClaim": {
                    "claimName": layout.shared_data_claim,
                    "readOnly": layout.shared_data_read_only,
                },
            }
        )
        mounts.append(
            {
                "name": "shared-data",
                "mountPath": layout.shared_data_mount_path,
                "readOnly": layout.shared_data_read_only,
            }
        )
    return vols, mounts


def profile_overrides(
    profile: Profile, layout: PodLayout, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    """The ``kubespawner_override`` for one profile (kubespawner trait names)."""
    vols, mounts = volumes(layout)
    override: dict[str, Any] = {
        "image": profile.image,
        "default_url": profile.default_url,
        "cpu_guarantee": profile.cpu.guarantee,
        "cpu_limit": profile.cpu.limit,
        "mem_guarantee": int(profile.memory.guarantee) if profile.memory.guarantee else None,
        "mem_limit": int(profile.memory.limit) if profile.memory.limit else None,
        "node_selector": node_selector(profile, layout),
        # a list replaces the configured one: only when the profile has tolerations
        "tolerations": tolerations(profile) or None,
        "volumes": vols,
        "volume_mounts": mounts,
        "extra_labels": {PROFILE_LABEL: profile.slug},
    }
    if profile.gpu_count:
        # Extended resources: requests must equal limits; say both explicitly.
        override["extra_resource_guarantees"] = {GPU_RESOURCE: str(profile.gpu_count)}
        override["extra_resource_limits"] = {GPU_RESOURCE: str(profile.gpu_count)}
    if environment:
        override["environment"] = dict(environment)
    # Unset resources stay at the spawner's configured value instead of None.
    override = {k: v for k, v in override.items() if v is not None}
    return merge_overrides(override, profile.kubespawner_override)


def profile_list(catalog: Catalog, layout: PodLayout) -> list[dict[str, Any]]:
    """kubespawner's ``profile_list`` for the whole catalog (display and admin tools)."""
    return [
        {
            "slug": p.slug,
            "display_name": p.display_name,
            "description": p.description,
            "default": p is catalog.default_profile,
            "kubespawner_override": profile_overrides(p, layout),
            **({"profile_options": to_kubespawner(p.profile_options)} if p.profile_options else {}),
        }
        for p in catalog.profiles
    ]
