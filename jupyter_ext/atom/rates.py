"""Fallback EC2 price table (us-east-1 on-demand, Linux), until the costs price snapshot
replaces it. Rates are integer micro-dollars per instance-hour.

``rate_for(instance_type, spot)`` is the callable shape the JobManager accepts; the costs
area provides one backed by its price snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError

SNAPSHOT = "atom-fallback-2026-11"
SPOT_FRACTION_PERCENT = 40  # fallback: spot costs about 40% of on-demand

# family: (arch, on-demand $/h per vCPU in micro-dollars, GiB per vCPU, spot available,
#          sizes as (suffix, vCPUs, GPUs))
_SIZES = [("large", 2), ("xlarge", 4), ("2xlarge", 8), ("4xlarge", 16), ("8xlarge", 32),
          ("12xlarge", 48), ("16xlarge", 64), ("24xlarge", 96)]
_FAMILIES = {
    "c6a": ("x86_64-amd", 38_250, 2, True, _SIZES + [("32xlarge", 128), ("48xlarge", 192)]),
    "m6a": ("x86_64-amd", 43_200, 4, True, _SIZES + [("32xlarge", 128), ("48xlarge", 192)]),
    "r6a": ("x86_64-amd", 56_700, 8, True, _SIZES + [("32xlarge", 128), ("48xlarge", 192)]),
    "c6i": ("x86_64-intel", 42_500, 2, True, _SIZES + [("32xlarge", 128)]),
    "m6i": ("x86_64-intel", 48_000, 4, True, _SIZES + [("32xlarge", 128)]),
    "r6i": ("x86_64-intel", 63_000, 8, True, _SIZES + [("32xlarge", 128)]),
    "c7g": ("arm64", 36_250, 2, True, [("medium", 1)] + _SIZES[:-1]),
    "m7g": ("arm64", 40_800, 4, True, [("medium", 1)] + _SIZES[:-1]),
    "r7g": ("arm64", 53_550, 8, True, [("medium", 1)] + _SIZES[:-1]),
}


@dataclass(frozen=True)
class InstanceType:
    name: str
    arch: str
    vcpus: int
    memory_mib: int
    gpus: int
    hourly_micro: int
    spot: bool


def _build() -> dict[str, InstanceType]:
    table = {}
    for fam, (arch, per_vcpu, gib, spot, sizes) in _FAMILIES.items():
        for suffix, vcpus in sizes:
            name = f"{fam}.{suffix}"
            table[name] = InstanceType(name, arch, vcpus, vcpus * gib * 1024, 0,
                                       per_vcpu * vcpus, spot)
    extra = [  # HPC and GPU types: (name, arch, vcpus, GiB, gpus, $/h micro, spot)
        ("hpc6a.48xlarge", "x86_64-amd", 96, 384, 0, 2_880_000, False),
        ("hpc6id.32xlarge", "x86_64-intel", 64, 1024, 0, 5_700_000, False),
        ("hpc7g.16xlarge", "arm64", 64, 128, 0, 1_683_600, False),
        ("g5.xlarge", "x86_64-amd", 4, 16, 1, 1_006_000, True),
        ("g5.2xlarge", "x86_64-amd", 8, 32, 1, 1_212_000, True),
        ("g5.12xlarge", "x86_64-amd", 48, 192, 4, 5_672_000, True),
        ("g5.48xlarge", "x86_64-amd", 192, 768, 8, 16_288_000, True),
        ("g4dn.xlarge", "x86_64-intel", 4, 16, 1, 526_000, True),
        ("g4dn.12xlarge", "x86_64-intel", 48, 192, 4, 3_912_000, True),
        ("g5g.xlarge", "arm64", 4, 8, 1, 420_000, True),
        ("g5g.16xlarge", "arm64", 64, 128, 2, 2_744_000, True),
    ]
    for name, arch, vcpus, gib, gpus, rate, spot in extra:
        table[name] = InstanceType(name, arch, vcpus, gib * 1024, gpus, rate, spot)
    return table


INSTANCE_TYPES: dict[str, InstanceType] = _build()

DEFAULT_FAMILIES = {
    "x86_64-amd": ("c6a", "m6a", "r6a"),
    "x86_64-intel": ("c6i", "m6i", "r6i"),
    "arm64": ("c7g", "m7g", "r7g"),
}
GPU_FAMILIES = {"x86_64-amd": ("g5",), "x86_64-intel": ("g4dn",), "arm64": ("g5g",)}


def rate_for(instance_type: str, spot: bool) -> int:
    """Micro-dollars per hour for one instance (fallback table)."""
    try:
        it = INSTANCE_TYPES[instance_type]
    except KeyError:
        raise SpecError("instance_type", f"no price for {instance_type!r}") from None
    if spot:
        if not it.spot:
            raise SpecError("spot", f"{instance_type} is not offered as spot", "false")
        return it.hourly_micro * SPOT_FRACTION_PERCENT // 100
    return it.hourly_micro


rate_for.snapshot = SNAPSHOT  # type: ignore[attr-defined]


def choose_instance(families, arch: str, vcpus: int, memory_mib: int, gpus: int,
                    spot: bool, rate=rate_for) -> InstanceType:
    """The cheapest instance type of ``families`` that fits one node of the job."""
    fams = tuple(families) + (GPU_FAMILIES.get(arch, ()) if gpus else ())
    fits = []
    for it in INSTANCE_TYPES.values():
        if it.name.split(".")[0] not in fams or it.arch != arch:
            continue
        if it.vcpus < vcpus or it.memory_mib < memory_mib or it.gpus < gpus:
            continue
        if spot and not it.spot:
            continue
        try:
            price = rate(it.name, spot)
        except (LookupError, ValueError):  # not in this price snapshot: not a candidate
            continue
        fits.append((price, it.vcpus, it.name, it))
    if not fits:
        biggest = max((it.vcpus for it in INSTANCE_TYPES.values()
                       if it.name.split(".")[0] in fams), default=0)
        raise SpecError("vcpus", f"no {arch} instance in {', '.join(fams)} has {vcpus} vCPUs, "
                        f"{memory_mib} MiB and {gpus} GPUs per node",
                        f"up to {biggest} vCPUs per node; use more nodes")
    return min(fits)[3]
