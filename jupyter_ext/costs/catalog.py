"""The price catalog: a dated snapshot of AWS list prices, the only source of prices.

A snapshot ships in the package (``data/prices.json``). ``lens prices refresh``
writes a newer one to ``$LENS_PRICES_FILE`` or ``$LENS_STATE_DIR/prices.json``,
which then takes precedence. Every price lens quotes or charges comes from it:
servers (instance types, EBS), Dask workers (``dask``), atom jobs (on-demand and
spot), archive storage, requests, retrievals and minimum storage durations (``s3``).

``process_catalog()`` is the one ``PriceCatalog`` of a process (loaded once from
the resolved file); engines receive it as a constructor argument or setting.
Every estimate carries the snapshot's label (date and source).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from .money import dec

PACKAGED = "prices.json"
ENV_FILE = "LENS_PRICES_FILE"


class PriceNotFound(KeyError):
    """A region, instance type or storage class the snapshot does not cover."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "price not found"


def state_dir() -> Path:
    base = os.environ.get("LENS_STATE_DIR")
    return Path(base) if base else Path.home() / ".local" / "share" / "lens"


def default_snapshot_path() -> Path:
    """Where ``lens prices refresh`` writes, and where a refreshed snapshot is read from."""
    return Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else state_dir() / "prices.json"


def resolved_snapshot_path(path: str | os.PathLike | None = None) -> Path | None:
    """The file prices are read from: ``path``, else the refreshed snapshot if it exists,
    else None (the packaged one)."""
    if path:
        return Path(path)
    candidate = default_snapshot_path()
    return candidate if candidate.exists() else None


def packaged_snapshot() -> dict[str, Any]:
    text = resources.files("jupyter_ext.costs").joinpath("data", PACKAGED).read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class SnapshotInfo:
    date: str
    source: str
    origin: str  # "package" or a file path

    @property
    def label(self) -> str:
        return f"price snapshot {self.date} ({self.source.split(';')[0]})"

    def as_dict(self) -> dict[str, str]:
        return {"date": self.date, "source": self.source, "origin": self.origin}


@dataclass
class PriceCatalog:
    data: dict[str, Any]
    origin: str = "package"
    default_region: str = "us-east-1"
    info: SnapshotInfo = field(init=False)

    def __post_init__(self) -> None:
        validate_snapshot(self.data)
        self.info = SnapshotInfo(self.data["date"], self.data["source"], self.origin)

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, region: str = "us-east-1") -> PriceCatalog:
        """Explicit ``path``, else a refreshed snapshot in the state dir, else the packaged one."""
        resolved = resolved_snapshot_path(path)
        if resolved is not None:
            return cls(json.loads(resolved.read_text("utf-8")), str(resolved), region)
        return cls(packaged_snapshot(), "package", region)

    # -- lookups ------------------------------------------------------------------
    @property
    def regions(self) -> list[str]:
        return sorted(self.data["regions"])

    def _region(self, region: str | None) -> dict[str, Any]:
        region = region or self.default_region
        try:
            return self.data["regions"][region]
        except KeyError:
            raise PriceNotFound(
                f"region: {region!r} is not in the {self.info.label}; known: {', '.join(self.regions)}"
            ) from None

    def instance_types(self, region: str | None = None) -> list[str]:
        return sorted(self._region(region)["ec2"])

    def instance(self, instance_type: str, region: str | None = None) -> dict[str, Any]:
        ec2 = self._region(region)["ec2"]
        if instance_type not in ec2:
            families = sorted({t.split(".")[0] for t in ec2})
            raise PriceNotFound(
                f"instance_type: {instance_type!r} is not in the {self.info.label} for "
                f"{region or self.default_region}; families: {', '.join(families)}"
            )
        return ec2[instance_type]

    def hourly(self, instance_type: str, region: str | None = None, market: str = "on-demand") -> Decimal:
        """USD per instance-hour. ``market='spot'`` uses the snapshot's spot price when it has one."""
        if market not in ("on-demand", "spot"):
            raise ValueError(f"market: {market!r}; allowed: 'on-demand', 'spot'")
        entry = self.instance(instance_type, region)
        if market == "spot":
            spot = self._region(region).get("spot", {}).get(instance_type)
            if spot:
                return dec(spot["price_hour"], "spot price")
        return dec(entry["ondemand_hour"], "ondemand_hour")

    def ebs(self, volume_type: str = "gp3", region: str | None = None) -> dict[str, Any]:
        ebs = self._region(region)["ebs"]
        if volume_type not in ebs:
            raise PriceNotFound(f"volume_type: {volume_type!r}; known: {', '.join(sorted(ebs))}")
        return ebs[volume_type]

    def dask(self, region: str | None = None) -> dict[str, Decimal]:
        """USD per hour of one Dask worker core, GiB of worker memory and worker GPU."""
        entry = self._region(region).get("dask")
        if not entry:
            raise PriceNotFound(f"dask: the {self.info.label} has no Dask worker rates")
        return {k: dec(entry[k], f"dask {k}") for k in ("core_hour", "gib_hour", "gpu_hour")}

    def storage_classes(self, region: str | None = None) -> list[str]:
        return sorted(self._region(region)["s3"])

    def s3(self, storage_class: str, region: str | None = None) -> dict[str, Any]:
        s3 = self._region(region)["s3"]
        if storage_class not in s3:
            raise PriceNotFound(
                f"storage_class: {storage_class!r}; allowed: {', '.join(sorted(s3))}"
            )
        return s3[storage_class]


_process: dict[tuple[str, str], PriceCatalog] = {}
_process_lock = threading.Lock()


def process_catalog(path: str | os.PathLike | None = None, region: str = "us-east-1") -> PriceCatalog:
    """The price catalog of this process: loaded once per resolved file and region, then
    shared by every engine (servers, Dask, jobs, archives). ``lens prices refresh`` takes
    effect when the processes that price things restart."""
    resolved = resolved_snapshot_path(path)
    key = (str(resolved) if resolved else "package", region)
    with _process_lock:
        if key not in _process:
            _process[key] = PriceCatalog.load(resolved, region)
        return _process[key]


def validate_snapshot(data: dict[str, Any]) -> None:
    """Refuse a snapshot that lacks the date, source or the sections estimates need."""
    for key in ("date", "source", "regions"):
        if key not in data:
            raise ValueError(f"price snapshot: missing field {key!r}")
    if not data["regions"]:
        raise ValueError("price snapshot: no regions")
    for name, region in data["regions"].items():
        for section in ("ec2", "ebs", "s3"):
            if section not in region:
                raise ValueError(f"price snapshot: region {name!r} lacks section {section!r}")
        for itype, entry in region["ec2"].items():
            dec(entry["ondemand_hour"], f"{name} {itype} ondemand_hour")
        for itype, entry in region.get("spot", {}).items():
            dec(entry["price_hour"], f"{name} spot {itype} price_hour")
        for key in ("core_hour", "gib_hour", "gpu_hour"):
            if key in region.get("dask", {}):
                dec(region["dask"][key], f"{name} dask {key}")
