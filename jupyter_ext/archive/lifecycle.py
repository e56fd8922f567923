"""Bucket lifecycle templates. Pure functions build the rules; ``apply`` stores them.

Transitions only touch data packs (objects tagged ``lens-kind=data``), so
manifests, pack indexes and archive entries stay hot. Every template also aborts
incomplete multipart uploads.
"""

from __future__ import annotations

from .errors import ConfigError

RULE_PREFIX = "lens-"

TEMPLATES: dict[str, dict] = {
    "archive-optimization": {
        "help": "30 d STANDARD_IA, 90 d GLACIER, 365 d DEEP_ARCHIVE",
        "transitions": [(30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")],
        "abort_days": 7,
    },
    "intelligent-tiering": {
        "help": "INTELLIGENT_TIERING from day 0 (automatic access tiers)",
        "transitions": [(0, "INTELLIGENT_TIERING")],
        "abort_days": 7,
    },
    "compliance-retention": {
        "help": "GLACIER after 1 d, DEEP_ARCHIVE after 90 d; old versions kept 7 years",
        "transitions": [(1, "GLACIER"), (90, "DEEP_ARCHIVE")],
        "noncurrent_expire_days": 2555,
        "abort_days": 7,
    },
    "fast-access": {
        "help": "stay in STANDARD for 90 d, then GLACIER_IR (millisecond reads)",
        "transitions": [(90, "GLACIER_IR")],
        "abort_days": 1,
    },
}


def lifecycle_rules(template: str, prefix: str = "") -> list[dict]:
    """The lens rules of ``template`` for keys under ``prefix``."""
    spec = TEMPLATES.get(template)
    if spec is None:
        raise ConfigError(f"template: {template!r} is not one of {', '.join(TEMPLATES)}")
    data_filter = {"And": {"Prefix": prefix, "Tags": [{"Key": "lens-kind", "Value": "data"}]}}
    data_rule = {
        "ID": f"{RULE_PREFIX}{template}-data",
        "Filter": data_filter,
        "Status": "Enabled",
        "Transitions": [{"Days": d, "StorageClass": c} for d, c in spec["transitions"]],
    }
    if "noncurrent_expire_days" in spec:
        data_rule["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": spec["noncurrent_expire_days"]}
    abort_rule = {
        "ID": f"{RULE_PREFIX}{template}-abort-mpu",
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": spec["abort_days"]},
    }
    return [data_rule, abort_rule]


def merge_rules(existing: list[dict], ours: list[dict]) -> list[dict]:
    """Keep foreign rules, replace every earlier lens rule with ``ours``."""
    kept = [r for r in existing if not str(r.get("ID", "")).startswith(RULE_PREFIX)]
    return kept + ours


def apply(store, template: str) -> list[dict]:
    prefix = getattr(store, "prefix", "")
    rules = merge_rules(store.get_lifecycle(), lifecycle_rules(template, prefix))
    store.put_lifecycle(rules)
    return rules
