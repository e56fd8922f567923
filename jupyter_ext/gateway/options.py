"""The cluster options users see (the dask-gateway client renders them as ipywidgets).

``make_options(settings)`` declares the schema; ``options_to_config`` turns
validated options into ClusterConfig overrides. Both are pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from dask_gateway_server.options import Float, Integer, Options, Select

from ..quantity import QuantityError, parse_quantity
from .settings import GIB, GatewaySettings


def make_options(settings: GatewaySettings, handler=None) -> Options:
    """The options schema. Kubernetes-only fields appear when ``settings.kubernetes``."""
    fields = [
        Integer(
            "worker_cores",
            default=settings.default_worker_cores,
            min=1,
            max=settings.max_worker_cores,
            label="Worker cores",
        ),
        Float(
            "worker_memory",
            default=settings.default_worker_memory_gib,
            min=settings.min_worker_memory_gib,
            max=settings.max_worker_memory_gib,
            label="Worker memory (GiB)",
        ),
        Float(
            "idle_timeout",
            default=settings.idle_timeout_minutes,
            min=settings.min_idle_timeout_minutes,
            max=settings.max_idle_timeout_minutes,
            label="Idle timeout (minutes)",
        ),
    ]
    if settings.kubernetes:
        images = list(settings.worker_images) or ["pangeo/pangeo-notebook:latest"]
        fields += [
            Select("image", images, default=images[0], label="Worker image"),
            Integer("worker_gpus", default=0, min=0, max=settings.max_worker_gpus, label="GPUs per worker"),
        ]
    if handler is None:
        def handler(options, user):
            return options_to_config(options, user.name, settings)
    return Options(*fields, handler=handler)


def worker_memory_bytes(value) -> int:
    """Bytes from the worker_memory option: a number is GiB (the widget's unit), a string
    a Kubernetes quantity ("1536Mi", "4Gi"; "4G" is 10^9 bytes), as everywhere in lens."""
    try:
        return parse_quantity(value, bare_unit="Gi")
    except QuantityError as exc:
        raise ValueError(f"worker_memory: {exc}") from None


def options_to_config(options: Mapping, user_name: str, settings: GatewaySettings) -> dict:
    """ClusterConfig overrides for validated ``options`` of ``user_name``.

    Raises ValueError naming the field when a value is out of bounds (the
    Options schema already checks; this guards direct callers).
    """
    cores = int(options["worker_cores"])
    memory = worker_memory_bytes(options["worker_memory"])
    idle = float(options["idle_timeout"])
    if not 1 <= cores <= settings.max_worker_cores:
        raise ValueError(f"worker_cores must be between 1 and {settings.max_worker_cores}, got {cores}")
    if not settings.min_worker_memory_gib * GIB <= memory <= settings.max_worker_memory_gib * GIB:
        raise ValueError(
            f"worker_memory must be between {settings.min_worker_memory_gib} and "
            f"{settings.max_worker_memory_gib} GiB, got {options['worker_memory']!r}"
        )
    config = {
        "worker_cores": cores,
        "worker_threads": cores,
        "worker_memory": memory,
        "idle_timeout": idle * 60.0,
    }
    if settings.kubernetes:
        image = options.get("image") or settings.worker_images[0]
        if image not in settings.worker_images:
            raise ValueError(f"image must be one of {list(settings.worker_images)}, got {image!r}")
        config["image"] = image
        gpus = int(options.get("worker_gpus", 0) or 0)
        if gpus:
            config["worker_extra_container_config"] = {
                "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
            }
            config["worker_extra_pod_config"] = {
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "nodeSelector": {"lens/gpu": "true"},
            }
    return config


def worker_gpus(config: Mapping) -> int:
    """GPUs per worker recorded in a cluster's config (0 when none)."""
    extra = config.get("worker_extra_container_config") or {}
    limits = (extra.get("resources") or {}).get("limits") or {}
    return int(limits.get("nvidia.com/gpu", 0) or 0)
