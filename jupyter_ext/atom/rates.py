"""Instance types and node rates of atom jobs, from the costs price catalog.

The catalog (``prices.json``, or what ``lens prices refresh`` wrote) is the only
table of instance types and prices: its ``ec2`` entries give vCPUs, memory, GPUs,
architecture and CPU vendor; on-demand and spot prices come from
``PriceCatalog.hourly``. An entry with ``"spot": false`` is not offered as spot.
What stays here is policy: which families a job may use per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import MICRO
from ..costs.catalog import PriceCatalog, PriceNotFound
from ..costs.money import round_micro
from .errors import SpecError

DEFAULT_FAMILIES = {
    "x86_64-amd": ("c6a", "m6a", "r6a"),
    "x86_64-intel": ("c6i", "m6i", "r6i"),
    "arm64": ("c7g", "m7g", "r7g"),
}
GPU_FAMILIES = {"x86_64-amd": ("g5",), "x86_64-intel": ("g4dn",), "arm64": ("g5g",)}


@dataclass(frozen=True)
class InstanceType:
    name: str
    arch: str       # atom's arch: x86_64-amd, x86_64-intel or arm64
    vcpus: int
    memory_mib: int
    gpus: int
    spot: bool


def atom_arch(entry: dict) -> str | None:
    """atom's architecture of a catalog ``ec2`` entry (None: unknown, not a candidate)."""
    if entry.get("arch") == "arm64":
        return "arm64"
    vendor = entry.get("cpu_vendor")
    return f"x86_64-{vendor}" if entry.get("arch") == "x86_64" and vendor in ("amd", "intel") else None


def instance_types(prices: PriceCatalog, region: str | None = None) -> dict[str, InstanceType]:
    """The catalog's instance types that atom can place jobs on."""
    out = {}
    for name in prices.instance_types(region):
        e = prices.instance(name, region)
        arch = atom_arch(e)
        if arch is None or "vcpu" not in e or "memory_gib" not in e:
            continue
        out[name] = InstanceType(name, arch, int(e["vcpu"]), int(float(e["memory_gib"]) * 1024),
                                 int(e.get("gpus", 0)), e.get("spot", True) is not False)
    return out


def node_rate_micro(prices: PriceCatalog, instance_type: str, spot: bool,
                    region: str | None = None) -> int:
    """Micro-dollars per hour of one node, as the catalog prices it."""
    try:
        entry = prices.instance(instance_type, region)
    except PriceNotFound:
        raise SpecError("instance_type", f"no price for {instance_type!r} in the "
                        f"{prices.info.label}") from None
    if spot and entry.get("spot", True) is False:
        raise SpecError("spot", f"{instance_type} is not offered as spot", "false")
    return round_micro(prices.hourly(instance_type, region, "spot" if spot else "on-demand") * MICRO)


def choose_instance(prices: PriceCatalog, families, arch: str, vcpus: int, memory_mib: int,
                    gpus: int, spot: bool, region: str | None = None) -> tuple[InstanceType, int]:
    """The cheapest instance type of ``families`` that fits one node of the job, and its
    rate (micro-dollars per hour)."""
    fams = tuple(families) + (GPU_FAMILIES.get(arch, ()) if gpus else ())
    types = instance_types(prices, region)
    fits = []
    for it in types.values():
        if it.name.split(".")[0] not in fams or it.arch != arch:
            continue
        if it.vcpus < vcpus or it.memory_mib < memory_mib or it.gpus < gpus:
            continue
        if spot and not it.spot:
            continue
        fits.append((node_rate_micro(prices, it.name, spot, region), it.vcpus, it.name, it))
    if not fits:
        biggest = max((it.vcpus for it in types.values() if it.name.split(".")[0] in fams),
                      default=0)
        raise SpecError("vcpus", f"no {arch} instance in {', '.join(fams)} has {vcpus} vCPUs, "
                        f"{memory_mib} MiB and {gpus} GPUs per node",
                        f"up to {biggest} vCPUs per node; use more nodes")
    rate, _, _, it = min(fits)
    return it, rate
