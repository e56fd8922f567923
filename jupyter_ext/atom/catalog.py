"""The app catalog (hub_config/atom_apps.yaml): containerized HPC apps per architecture.

Loaded and validated once; a bad file raises SpecError naming the app and field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..paths import config_file
from .errors import SpecError
from .spec import ARCHES, IMAGE_RE, NAME_RE, VERSION_RE, parse_memory, parse_walltime

APP_KEYS = {"display_name", "description", "mpi", "versions", "default_version", "images",
            "instance_families", "defaults", "runtime_scale", "reference_runtime", "command"}
DEFAULT_KEYS = {"vcpus", "memory", "gpus", "nodes", "walltime"}
FAMILY_RE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\Z")


@dataclass(frozen=True)
class App:
    name: str
    display_name: str
    description: str
    versions: tuple[str, ...]
    default_version: str
    images: Mapping[str, str]
    instance_families: Mapping[str, tuple[str, ...]]
    defaults: Mapping[str, Any]
    runtime_scale: Mapping[str, float]
    reference_runtime_s: int | None = None
    command: tuple[str, ...] = ()
    mpi: bool = False
    archs: tuple[str, ...] = field(default=())

    def check_version(self, version: str | None) -> str:
        if version is None:
            return self.default_version
        if version not in self.versions:
            raise SpecError("version", f"{self.name} has no version {version!r}",
                            ", ".join(self.versions))
        return version

    def check_arch(self, arch: str) -> None:
        if arch not in self.archs:
            raise SpecError("arch", f"{self.name} is not built for {arch}", ", ".join(self.archs))

    def image_for(self, arch: str, version: str) -> str:
        self.check_arch(arch)
        return self.images[arch].replace("{version}", version)

    def defaults_for(self, arch: str) -> dict[str, Any]:
        """Default resources; the default walltime is scaled by the arch's runtime factor."""
        d = dict(self.defaults)
        if "walltime" in d:
            d["walltime"] = max(60, int(round(d["walltime"] * self.runtime_scale.get(arch, 1.0))))
        return d

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name,
                "description": self.description, "versions": list(self.versions),
                "default_version": self.default_version, "archs": list(self.archs),
                "mpi": self.mpi, "defaults": dict(self.defaults),
                "runtime_scale": dict(self.runtime_scale)}


class AppCatalog:
    def __init__(self, apps: Mapping[str, App]):
        self.apps = dict(apps)

    def get(self, name: str) -> App:
        try:
            return self.apps[name]
        except KeyError:
            raise SpecError("app", f"unknown app {name!r}", ", ".join(sorted(self.apps))) from None

    def names(self) -> list[str]:
        return sorted(self.apps)

    def list(self) -> list[dict[str, Any]]:
        return [self.apps[n].summary() for n in self.names()]


def _app(name: str, raw: Any) -> App:
    where = f"apps.{name}"
    if not NAME_RE.match(name):
        raise SpecError(where, "invalid app name", NAME_RE.pattern)
    if not isinstance(raw, Mapping):
        raise SpecError(where, "must be a mapping")
    unknown = set(raw) - APP_KEYS
    if unknown:
        raise SpecError(f"{where}.{sorted(unknown)[0]}", "unknown key", ", ".join(sorted(APP_KEYS)))
    versions = raw.get("versions")
    if not isinstance(versions, list) or not versions:
        raise SpecError(f"{where}.versions", "must be a non-empty list")
    versions = tuple(str(v) for v in versions)
    for v in versions:
        if not VERSION_RE.match(v):
            raise SpecError(f"{where}.versions", f"invalid version {v!r}", VERSION_RE.pattern)
    default_version = str(raw.get("default_version", versions[0]))
    if default_version not in versions:
        raise SpecError(f"{where}.default_version", "not in versions", ", ".join(versions))
    images = raw.get("images")
    if not isinstance(images, Mapping) or not images:
        raise SpecError(f"{where}.images", "must map architectures to images", ", ".join(ARCHES))
    for arch, image in images.items():
        if arch not in ARCHES:
            raise SpecError(f"{where}.images.{arch}", "unknown architecture", ", ".join(ARCHES))
        if not isinstance(image, str) or not IMAGE_RE.match(image.replace("{version}", "v")):
            raise SpecError(f"{where}.images.{arch}", f"invalid image {image!r}")
    archs = tuple(a for a in ARCHES if a in images)
    families = raw.get("instance_families") or {}
    if not isinstance(families, Mapping) or set(families) != set(archs):
        raise SpecError(f"{where}.instance_families", "must list families for each image arch",
                        ", ".join(archs))
    fams = {}
    for arch, lst in families.items():
        if not isinstance(lst, list) or not lst or not all(
                isinstance(f, str) and FAMILY_RE.match(f) for f in lst):
            raise SpecError(f"{where}.instance_families.{arch}", "must be a list of families",
                            "e.g. [c6a, m6a]")
        fams[arch] = tuple(lst)
    scale = raw.get("runtime_scale") or {}
    if not isinstance(scale, Mapping) or set(scale) != set(archs):
        raise SpecError(f"{where}.runtime_scale", "must give a factor for each image arch",
                        ", ".join(archs))
    for arch, f in scale.items():
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.1 <= f <= 10:
            raise SpecError(f"{where}.runtime_scale.{arch}", f"invalid factor {f!r}", "0.1..10")
    defaults_raw = raw.get("defaults") or {}
    if not isinstance(defaults_raw, Mapping) or set(defaults_raw) - DEFAULT_KEYS:
        raise SpecError(f"{where}.defaults", "unknown resource", ", ".join(sorted(DEFAULT_KEYS)))
    defaults: dict[str, Any] = {}
    for key, value in defaults_raw.items():
        if key == "memory":
            defaults[key] = parse_memory(value, f"{where}.defaults.memory")
        elif key == "walltime":
            defaults[key] = parse_walltime(value, f"{where}.defaults.walltime")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(f"{where}.defaults.{key}", "must be a non-negative integer")
        else:
            defaults[key] = value
    ref = raw.get("reference_runtime")
    command = raw.get("command") or []
    if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
        raise SpecError(f"{where}.command", "must be a list of strings")
    mpi = raw.get("mpi", False)
    if not isinstance(mpi, bool):
        raise SpecError(f"{where}.mpi", "must be true or false")
    return App(
        name=name, display_name=str(raw.get("display_name", name)),
        description=str(raw.get("description", "")), versions=versions,
        default_version=default_version, images=dict(images), instance_families=fams,
        defaults=defaults, runtime_scale={k: float(v) for k, v in scale.items()},
        reference_runtime_s=parse_walltime(ref, f"{where}.reference_runtime") if ref else None,
        command=tuple(command), mpi=mpi, archs=archs,
    )


def parse_catalog(data: Any) -> AppCatalog:
    if not isinstance(data, Mapping) or not isinstance(data.get("apps"), Mapping):
        raise SpecError("apps", "the catalog must have a top-level 'apps' mapping")
    return AppCatalog({name: _app(str(name), raw) for name, raw in data["apps"].items()})


def load_catalog(path: str | os.PathLike | None = None) -> AppCatalog:
    """Load and validate the catalog (default: $LENS_ATOM_APPS or hub_config/atom_apps.yaml)."""
    path = config_file("atom_apps.yaml", path)
    with open(path, encoding="utf-8") as f:
        return parse_catalog(yaml.safe_load(f))
