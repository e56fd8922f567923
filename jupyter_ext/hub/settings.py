"""Hub settings: `lens.yaml` (path in $LENS_CONFIG) overlaid by LENS_* environment.

Pure: returns a plain dict that hub_config/jupyterhub_config.py applies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "bind_url": "http://127.0.0.1:8000",
    "ports": {"proxy_api": 8001, "hub": 8081, "lens_service": 8020, "gateway": 8010, "gateway_proxy": 8786},
    "auth": {"type": "password"},
    # The start line (spawners/admission.py, start_capacity "auto": 6 CPU-seconds per core)
    # paces a burst of logins; concurrent_spawn_limit is only a backstop, so a class-sized
    # burst gets no "Too many users" 429.
    "spawner": {"start_timeout": 120, "http_timeout": 60, "concurrent_spawn_limit": 500,
                "start_capacity": "auto"},
    "culler": {"default_timeout": 3600, "every": 60, "activity_interval": 300},
    "admin_user": "admin",
    "announcement": "",  # operator's HTML for the hub's banner; budget alerts are added to it
}
AUTH_TYPES = ("password", "oidc")
OIDC_KEYS = (
    "client_id", "client_secret", "authorize_url", "token_url", "userdata_url",
    "oauth_callback_url", "scope", "username_claim", "allowed_groups", "admin_groups", "claim_groups_key",
)


OIDC_LIST_KEYS = {"scope", "allowed_groups", "admin_groups"}


class SettingsError(ValueError):
    pass


def check_types(settings: dict, where: str) -> None:
    """The optional keys whose wrong type would only fail deep inside the hub's config."""
    spawner = settings.get("spawner")
    if not isinstance(spawner, dict):
        raise SettingsError(f"{where}: spawner must be a mapping")
    gpus = spawner.get("gpu_count", 0)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise SettingsError(f"{where}: spawner.gpu_count must be a whole number >= 0, not {gpus!r}")
    capacity = spawner.get("start_capacity", "auto")
    if capacity != "auto" and (isinstance(capacity, bool) or not isinstance(capacity, int | float) or capacity < 0):
        raise SettingsError(f"{where}: spawner.start_capacity must be 'auto' or CPU-seconds >= 0 "
                            f"(0: no start line), not {capacity!r}")
    if not isinstance(spawner.get("budget_gate", True), bool):
        raise SettingsError(f"{where}: spawner.budget_gate must be true or false, not {spawner['budget_gate']!r}")
    interval = settings.get("culler", {}).get("activity_interval", 300)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise SettingsError(f"{where}: culler.activity_interval must be whole seconds >= 1, not {interval!r}")
    if not isinstance(settings.get("announcement", ""), str):
        raise SettingsError(f"{where}: announcement must be text (HTML)")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_settings(path: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    settings = _merge(DEFAULTS, {})
    path = path or env.get("LENS_CONFIG")
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{path}: must be a mapping")
        settings = _merge(settings, data)
    if env.get("LENS_BIND_URL"):
        settings["bind_url"] = env["LENS_BIND_URL"]
    for key in settings["ports"]:
        var = f"LENS_{key.upper()}_PORT"
        if env.get(var):
            settings["ports"][key] = int(env[var])
    if env.get("LENS_AUTH"):
        settings["auth"] = _merge(settings["auth"], {"type": env["LENS_AUTH"]})
    oidc = {k: env[f"LENS_OIDC_{k.upper()}"] for k in OIDC_KEYS if env.get(f"LENS_OIDC_{k.upper()}")}
    for key in OIDC_LIST_KEYS & oidc.keys():  # "a,b c" in the environment: a list, not characters
        oidc[key] = [item for item in oidc[key].replace(",", " ").split() if item]
    if oidc:
        settings["auth"] = _merge(settings["auth"], {"oidc": oidc})
    check_types(settings, path or "settings")
    auth_type = settings["auth"].get("type")
    if auth_type not in AUTH_TYPES:
        raise SettingsError(f"auth.type must be one of {', '.join(AUTH_TYPES)}, not {auth_type!r}")
    if auth_type == "oidc":
        missing = [k for k in ("client_id", "authorize_url", "token_url", "userdata_url", "oauth_callback_url")
                   if not settings["auth"].get("oidc", {}).get(k)]
        if missing:
            raise SettingsError(f"auth.type=oidc needs auth.oidc.{', auth.oidc.'.join(missing)}")
    return settings
