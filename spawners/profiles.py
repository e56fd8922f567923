"""The profile catalog (``hub_config/profiles.yaml``): load, validate, select.

Pure data and functions, shared by the local and the Kubernetes spawner, the
spawn form and the tests. The YAML keeps kubespawner's ``profile_list`` shape
(slug, display_name, description, default, kubespawner_override) so admins
who know z2jh can read it, plus the fields lens needs everywhere: cost, groups,
idle timeout and the interface the profile opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jupyter_ext.quantity import parse_quantity

from .profile_options import OptionsError, ProfileOption, parse_profile_options

INTERFACES = {
    "lab": "/lab",
    "vscode": "/vscode/",
    "rstudio": "/rstudio/",
    "desktop": "/desktop/",  # jupyter-remote-desktop-proxy: noVNC, XFCE in TigerVNC
}
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
PROFILE_KEYS = {
    "slug", "display_name", "description", "default", "interface", "default_url", "image",
    "cpu", "memory", "gpu", "node_selector", "tolerations", "instance_type", "hourly_cost",
    "allowed_groups", "idle_timeout", "requires", "kubespawner_override", "profile_options", "start_cost",
    "collaboration",
}


class CatalogError(ValueError):
    """A catalog problem, naming the file, the profile and the field."""

    def __init__(self, source: str, profile: str | None, field_name: str | None, message: str):
        self.source, self.profile, self.field, self.detail = source, profile, field_name, message
        where = source
        if profile:
            where += f": profile {profile!r}"
        if field_name:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {message}")


class ProfileError(Exception):
    """A spawn request that names a profile the user may not start."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Resources:
    guarantee: float | int | None = None
    limit: float | int | None = None


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    interface: str
    default_url: str
    image: str
    cpu: Resources
    memory: Resources  # bytes
    gpu_count: int = 0
    gpu_type: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict, ...] = ()
    instance_type: str | None = None
    hourly_cost: float | None = None  # USD per hour; None -> priced from instance_type
    allowed_groups: tuple[str, ...] = ()  # empty: everyone
    idle_timeout: int = 3600  # seconds
    requires: tuple[str, ...] = ()  # local executables this profile needs
    default: bool = False
    kubespawner_override: dict[str, Any] = field(default_factory=dict)
    profile_options: tuple[ProfileOption, ...] = ()  # kubespawner's per-profile choices
    start_cost: float = 3.0  # CPU-seconds a start takes to ready: its share of the start line
    collaboration: bool = True  # real-time collaboration (jupyter-collaboration) in JupyterLab

    def allowed_for(self, groups: set[str] | list[str], admin: bool = False) -> bool:
        return admin or not self.allowed_groups or bool(set(self.allowed_groups) & set(groups))


@dataclass(frozen=True)
class Catalog:
    source: str
    profiles: tuple[Profile, ...]
    default_idle_timeout: int = 3600

    def get(self, slug: str) -> Profile | None:
        return next((p for p in self.profiles if p.slug == slug), None)

    @property
    def default_profile(self) -> Profile:
        return next((p for p in self.profiles if p.default), self.profiles[0])


def _resources(source, slug, name, raw, *, quantity: bool) -> Resources:
    if raw is None:
        return Resources()
    if not isinstance(raw, dict) or set(raw) - {"guarantee", "limit"}:
        raise CatalogError(source, slug, name, "must be a mapping with 'guarantee' and/or 'limit'")
    conv = parse_quantity if quantity else float
    try:
        values = {k: conv(v) for k, v in raw.items() if v is not None}
    except (TypeError, ValueError) as exc:
        raise CatalogError(source, slug, name, str(exc)) from None
    if any(v <= 0 for v in values.values()):
        raise CatalogError(source, slug, name, "values must be positive")
    g, lim = values.get("guarantee"), values.get("limit")
    if g is not None and lim is not None and g > lim:
        raise CatalogError(source, slug, name, f"guarantee {g} exceeds limit {lim}")
    return Resources(g, lim)


def _str_list(source, slug, name, raw) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise CatalogError(source, slug, name, "must be a list of non-empty strings")
    return tuple(raw)


def parse_profile(source: str, raw: Any, defaults: dict[str, Any]) -> Profile:
    if not isinstance(raw, dict):
        raise CatalogError(source, None, None, f"each profile must be a mapping, got {raw!r}")
    slug = raw.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise CatalogError(source, str(slug), "slug", "must match [a-z][a-z0-9-]{0,31}")
    unknown = set(raw) - PROFILE_KEYS
    if unknown:
        raise CatalogError(
            source, slug, sorted(unknown)[0], f"unknown field; allowed: {', '.join(sorted(PROFILE_KEYS))}"
        )
    merged = {**defaults, **raw}

    def text(name, required=True):
        value = merged.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(source, slug, name, "is required and must be a non-empty string")
        return value

    interface = merged.get("interface", "lab")
    if interface not in INTERFACES:
        raise CatalogError(source, slug, "interface", f"must be one of {', '.join(INTERFACES)}")
    gpu = merged.get("gpu") or {}
    if not isinstance(gpu, dict) or set(gpu) - {"count", "type"}:
        raise CatalogError(source, slug, "gpu", "must be a mapping with 'count' and 'type'")
    gpu_count = gpu.get("count", 0)
    if not isinstance(gpu_count, int) or isinstance(gpu_count, bool) or gpu_count < 0:
        raise CatalogError(source, slug, "gpu", "count must be a non-negative integer")
    if gpu_count and not gpu.get("type"):
        raise CatalogError(source, slug, "gpu", "type is required when count > 0")
    hourly = merged.get("hourly_cost")
    if hourly is not None and (isinstance(hourly, bool) or not isinstance(hourly, int | float) or hourly < 0):
        raise CatalogError(source, slug, "hourly_cost", "must be a non-negative number (USD per hour)")
    instance_type = merged.get("instance_type")
    if instance_type is not None and not isinstance(instance_type, str):
        raise CatalogError(source, slug, "instance_type", "must be a string like m6i.xlarge")
    if hourly is None and not instance_type:
        raise CatalogError(source, slug, "hourly_cost", "give hourly_cost and/or instance_type")
    idle = merged.get("idle_timeout", 3600)
    if not isinstance(idle, int) or isinstance(idle, bool) or idle < 0:
        raise CatalogError(source, slug, "idle_timeout", "must be a whole number of seconds (0 = never)")
    start_cost = merged.get("start_cost", 3.0)
    if isinstance(start_cost, bool) or not isinstance(start_cost, int | float) or not 0 <= start_cost <= 600:
        raise CatalogError(source, slug, "start_cost", "must be a number of CPU-seconds from 0 to 600")
    collaboration = merged.get("collaboration", True)
    if not isinstance(collaboration, bool):
        raise CatalogError(source, slug, "collaboration", "must be true or false")
    node_selector = merged.get("node_selector") or {}
    if not isinstance(node_selector, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in node_selector.items()
    ):
        raise CatalogError(source, slug, "node_selector", "must map strings to strings")
    tolerations = merged.get("tolerations") or []
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        raise CatalogError(source, slug, "tolerations", "must be a list of mappings")
    override = merged.get("kubespawner_override") or {}
    if not isinstance(override, dict):
        raise CatalogError(source, slug, "kubespawner_override", "must be a mapping")
    try:
        options = parse_profile_options(merged.get("profile_options"))
    except OptionsError as exc:
        raise CatalogError(source, slug, exc.where, exc.message) from None
    default_url = merged.get("default_url") or INTERFACES[interface]
    if not isinstance(default_url, str) or not default_url.startswith("/"):
        raise CatalogError(source, slug, "default_url", "must be a path starting with /")
    return Profile(
        slug=slug,
        display_name=text("display_name"),
        description=text("description"),
        interface=interface,
        default_url=default_url,
        image=text("image"),
        cpu=_resources(source, slug, "cpu", merged.get("cpu"), quantity=False),
        memory=_resources(source, slug, "memory", merged.get("memory"), quantity=True),
        gpu_count=gpu_count,
        gpu_type=gpu.get("type"),
        node_selector=dict(node_selector),
        tolerations=tuple(tolerations),
        instance_type=instance_type,
        hourly_cost=float(hourly) if hourly is not None else None,
        allowed_groups=_str_list(source, slug, "allowed_groups", merged.get("allowed_groups")),
        idle_timeout=idle,
        requires=_str_list(source, slug, "requires", merged.get("requires")),
        default=bool(merged.get("default", False)),
        kubespawner_override=dict(override),
        profile_options=options,
        start_cost=float(start_cost),
        collaboration=collaboration,
    )


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    if not isinstance(data, dict) or "profiles" not in data:
        raise CatalogError(source, None, "profiles", "the file must be a mapping with a 'profiles' list")
    unknown = set(data) - {"defaults", "profiles"}
    if unknown:
        raise CatalogError(source, None, sorted(unknown)[0], "unknown top-level key; allowed: defaults, profiles")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise CatalogError(source, None, "defaults", "must be a mapping")
    raw_profiles = data["profiles"]
    if not isinstance(raw_profiles, list) or not raw_profiles:
        raise CatalogError(source, None, "profiles", "must be a non-empty list")
    profiles = tuple(parse_profile(source, raw, defaults) for raw in raw_profiles)
    seen: set[str] = set()
    for p in profiles:
        if p.slug in seen:
            raise CatalogError(source, p.slug, "slug", "is used by more than one profile")
        seen.add(p.slug)
    if sum(p.default for p in profiles) > 1:
        raise CatalogError(source, None, "default", "only one profile may be the default")
    return Catalog(source=source, profiles=profiles, default_idle_timeout=defaults.get("idle_timeout", 3600))


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CatalogError(str(path), None, None, "file not found") from None
    except yaml.YAMLError as exc:
        raise CatalogError(str(path), None, None, f"invalid YAML: {exc}") from None
    return parse_catalog(data, str(path))


def select_profile(
    catalog: Catalog,
    user_options: dict[str, Any] | None,
    groups: set[str] | list[str],
    *,
    admin: bool = False,
    unavailable: dict[str, str] | None = None,
) -> Profile:
    """Resolve the requested profile or raise ProfileError (400/403).

    Never falls back silently: an absent profile means the catalog default,
    but a named one must exist, be available here and be allowed.
    """
    options = user_options or {}
    slug = options.get("profile")
    if isinstance(slug, list):  # from an HTML form
        if len(slug) != 1:
            raise ProfileError(400, "Choose exactly one profile.")
        slug = slug[0]
    if slug is None or slug == "":
        profile = catalog.default_profile
    else:
        if not isinstance(slug, str):
            raise ProfileError(400, "'profile' must be a profile slug")
        profile = catalog.get(slug)
        if profile is None:
            known = ", ".join(p.slug for p in catalog.profiles)
            raise ProfileError(400, f"Unknown profile {slug!r}. Available profiles: {known}.")
    if not profile.allowed_for(groups, admin):
        raise ProfileError(
            403,
            f"Profile {profile.slug!r} is limited to the groups: {', '.join(profile.allowed_groups)}.",
        )
    reason = (unavailable or {}).get(profile.slug)
    if reason:
        raise ProfileError(400, f"Profile {profile.slug!r} is not available on this hub: {reason}.")
    return profile
