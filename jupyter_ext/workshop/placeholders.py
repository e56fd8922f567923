"""Pre-warmed classes on Kubernetes: z2jh's user placeholders, scaled for a class.

On Kubernetes a seat's server is a pod, and what makes a class start slowly is a
cluster without room: new nodes take minutes to join and pull the image. z2jh's
answer is *user placeholders*: pause pods of the lowest priority, the size of a
user pod, that make the cluster autoscaler add nodes ahead of time and that are
evicted the moment a real user pod needs their room. The continuous image
pre-puller (a DaemonSet) pulls the catalog's images on every node as it joins,
so the nodes the placeholders bring in are ready with the image too.

``lens workshop prewarm`` on Kubernetes therefore starts no server: it records a
*plan* (``make_plan``): this many placeholders from ``starts - lead`` until
``starts + grace``, in ``STATE/workshops/placeholder-plans.json``. The lens
service applies the plans every minute (jupyter_ext/service/workshop_routes.py):
it scales the placeholder StatefulSet to ``desired_replicas`` through its
``scale`` subresource (``scale_patch``), and back to the chart's own count once
the plans have ended. The command can run days ahead and never has to wait.

Everything here is pure (or a small file), tested in tests/unit/test_placeholders.py;
the Kubernetes call is the thin adapter jupyter_ext/clients/kube.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from jupyter_ext.quantity import parse_quantity
from jupyter_ext.workshop.statefile import write_private_json

PLANS_FILE = "placeholder-plans.json"
DEFAULT_LEAD = timedelta(minutes=20)
# The JSON the chart gives the lens service pod (templates/lens-service.yaml).
SPEC_ENV = "LENS_PLACEHOLDERS"
MERGE_PATCH = "application/merge-patch+json"


class PlaceholderError(ValueError):
    """A plan that cannot be made; the message is for the operator."""


@dataclass(frozen=True)
class PlaceholderSpec:
    """What the chart says about the placeholder pods (the JSON in $LENS_PLACEHOLDERS)."""

    statefulset: str
    namespace: str
    cpu: Fraction  # cores one placeholder requests
    memory: int  # bytes one placeholder requests
    node_selector: dict[str, str] = field(default_factory=dict)
    base_replicas: int = 0  # the chart's scheduling.userPlaceholder.replicas: kept when no plan runs
    max_replicas: int = 100  # never more than this, whatever the plans add up to
    prepulled_images: tuple[str, ...] = ()  # the continuous pre-puller's images

    @classmethod
    def from_json(cls, text: str) -> PlaceholderSpec:
        try:
            raw = json.loads(text)
            requests = raw["requests"]
            spec = cls(
                statefulset=str(raw["statefulset"]),
                namespace=str(raw["namespace"]),
                cpu=parse_cpu(requests["cpu"]),
                memory=parse_quantity(requests["memory"]),
                node_selector={str(k): str(v) for k, v in (raw.get("nodeSelector") or {}).items()},
                base_replicas=int(raw.get("baseReplicas", 0)),
                max_replicas=int(raw.get("maxReplicas", 100)),
                prepulled_images=tuple(str(i) for i in raw.get("prepulledImages") or ()),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlaceholderError(f"${SPEC_ENV} is not the chart's placeholder spec: {exc}") from None
        if spec.cpu <= 0 or spec.memory <= 0:
            raise PlaceholderError(f"${SPEC_ENV}: placeholders must request cpu and memory (they reserve room)")
        if not 0 <= spec.base_replicas <= spec.max_replicas:
            raise PlaceholderError(f"${SPEC_ENV}: baseReplicas must be between 0 and maxReplicas")
        return spec


def parse_cpu(value: Any) -> Fraction:
    """Cores from a Kubernetes CPU quantity: 2, 0.5, "500m"."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU quantity: {value!r}")
    text = str(value).strip()
    try:
        cores = Fraction(text[:-1]) / 1000 if text.endswith("m") else Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a CPU quantity: {value!r}") from None
    if cores < 0:
        raise ValueError(f"not a CPU quantity: {value!r}")
    return cores


def placeholders_for(seats: int, cpu: float | Fraction | None, memory: int | None, spec: PlaceholderSpec) -> int:
    """How many placeholders hold the room of ``seats`` pods that each request
    ``cpu`` cores and ``memory`` bytes: enough for the larger of the two.

    A profile that requests neither gets one placeholder per seat (z2jh's own rule)."""
    if seats <= 0:
        return 0
    cpu = Fraction(cpu or 0).limit_denominator(1000)
    memory = memory or 0
    if not cpu and not memory:
        return seats
    return max(math.ceil(seats * cpu / spec.cpu), math.ceil(Fraction(seats * memory, spec.memory)))


def placement_problem(profile: str, node_selector: dict[str, str], gpus: int,
                      spec: PlaceholderSpec) -> str | None:
    """Why placeholders cannot make room for this profile's pods (None: they can).

    Placeholders land on nodes matching their own selector and request no GPU,
    so they only make room where every such node also suits the profile."""
    if gpus:
        return (f"profile {profile!r} requests a GPU; placeholders request none and cannot bring up GPU "
                "nodes (raise the GPU node group's minimum size for the class instead)")
    missing = {k: v for k, v in node_selector.items() if spec.node_selector.get(k) != v}
    if missing:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
        have = ", ".join(f"{k}={v}" for k, v in sorted(spec.node_selector.items())) or "none"
        return (f"profile {profile!r} runs on nodes labelled {wanted}, but the placeholders' node selector "
                f"is {have} (jupyterhub.scheduling.userPlaceholder.extraPodSpec.nodeSelector)")
    return None


@dataclass(frozen=True)
class Plan:
    workshop: str
    profile: str
    seats: int
    placeholders: int
    scale_up_at: datetime  # naive UTC
    scale_down_at: datetime

    def active(self, now: datetime) -> bool:
        return self.scale_up_at <= now < self.scale_down_at

    def to_json(self) -> dict:
        return {"profile": self.profile, "seats": self.seats, "placeholders": self.placeholders,
                "scale_up_at": self.scale_up_at.isoformat(), "scale_down_at": self.scale_down_at.isoformat()}

    @classmethod
    def from_json(cls, workshop: str, raw: dict) -> Plan:
        return cls(workshop=workshop, profile=str(raw["profile"]), seats=int(raw["seats"]),
                   placeholders=int(raw["placeholders"]),
                   scale_up_at=datetime.fromisoformat(raw["scale_up_at"]),
                   scale_down_at=datetime.fromisoformat(raw["scale_down_at"]))


def make_plan(workshop: str, profile: str, seats: int, placeholders: int, *, starts: datetime,
              lead: timedelta = DEFAULT_LEAD, grace: timedelta, spec: PlaceholderSpec) -> Plan:
    """Scale up ``lead`` before the class (nodes join and pull the image meanwhile),
    back down ``grace`` after it starts (students who come late still find room)."""
    if placeholders > spec.max_replicas - spec.base_replicas:
        raise PlaceholderError(
            f"{placeholders} placeholders for {seats} seats of {profile!r} is more than the chart allows "
            f"({spec.max_replicas} at most, {spec.base_replicas} of them always there: lens.prewarm.maxPlaceholders)")
    return Plan(workshop=workshop, profile=profile, seats=seats, placeholders=placeholders,
                scale_up_at=starts - lead, scale_down_at=starts + grace)


def desired_replicas(plans: list[Plan] | tuple[Plan, ...], spec: PlaceholderSpec, now: datetime) -> int:
    """The chart's own count plus every running plan's, capped at the chart's maximum."""
    wanted = spec.base_replicas + sum(p.placeholders for p in plans if p.active(now))
    return min(spec.max_replicas, wanted)


def scale_patch(replicas: int) -> dict:
    """The body sent to PATCH .../statefulsets/NAME/scale (as ``MERGE_PATCH``)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be a whole number >= 0, not {replicas!r}")
    return {"spec": {"replicas": replicas}}


def plans_path(state_root: Path | str) -> Path:
    return Path(state_root) / "workshops" / PLANS_FILE


def read_plans(state_root: Path | str) -> list[Plan]:
    """The recorded plans ([] when none, or the file is unreadable: nothing is scaled up then)."""
    try:
        raw = json.loads(plans_path(state_root).read_text())
    except (OSError, ValueError):
        return []
    plans = []
    for name, entry in raw.items() if isinstance(raw, dict) else ():
        try:
            plans.append(Plan.from_json(str(name), entry))
        except (KeyError, TypeError, ValueError):
            continue
    return plans


def write_plan(state_root: Path | str, plan: Plan, now: datetime) -> list[Plan]:
    """Record ``plan`` (replacing the workshop's earlier one), drop plans that have ended;
    0600, atomic. Returns the plans now recorded."""
    plans = {p.workshop: p for p in read_plans(state_root) if p.scale_down_at > now}
    plans[plan.workshop] = plan
    write_private_json(plans_path(state_root), {name: p.to_json() for name, p in sorted(plans.items())})
    return list(plans.values())
