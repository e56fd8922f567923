"""What every lens spawner shares: the catalog, the form, group access, the
budget gate, metering events and the environment given to user servers.

Both ``LocalProfileSpawner`` and ``KubeProfileSpawner`` mix this in; they only
say how a chosen profile becomes their own settings (``apply_profile``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyterhub.spawner import SpawnException
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Dict, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from .availability import local_unavailability
from .form import render_form
from .pricing import hourly_rate
from .profiles import Catalog, Profile, ProfileError, load_catalog, select_profile

HUB_CONFIG_DIR = Path(__file__).resolve().parent.parent / "hub_config"
_catalog_cache: dict[str, tuple[float, Catalog]] = {}


def cached_catalog(path: str) -> Catalog:
    """Load the catalog once per file change (the form is rendered on every visit)."""
    mtime = os.stat(path).st_mtime
    hit = _catalog_cache.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    catalog = load_catalog(path)
    _catalog_cache[path] = (mtime, catalog)
    return catalog


class ProfileSpawnerMixin(LoggingConfigurable):
    """Profile selection, budget gate and lens environment for a Spawner."""

    profiles_path = Unicode(
        config=True,
        help="Path of the profile catalog (profiles.yaml). Default: $LENS_PROFILES or hub_config/profiles.yaml.",
    )

    @default("profiles_path")
    def _default_profiles_path(self):
        return os.environ.get("LENS_PROFILES") or str(HUB_CONFIG_DIR / "profiles.yaml")

    lens_service_url = Unicode(
        config=True,
        help="Base URL of the lens service API as the hub reaches it, ending in '/'. Empty: no budget gate.",
    )

    @default("lens_service_url")
    def _default_lens_service_url(self):
        return os.environ.get("LENS_SERVICE_INTERNAL_URL", "")

    lens_public_service_url = Unicode(
        config=True,
        help="URL of the lens service as user servers reach it (LENS_SERVICE_URL in their environment).",
    )

    @default("lens_public_service_url")
    def _default_public_url(self):
        return os.environ.get("LENS_SERVICE_URL", self.lens_service_url)

    lens_api_token = Unicode(
        config=True,
        help="Token of the hub-side 'lens-gate' service, used for budget checks and metering events.",
    )

    @default("lens_api_token")
    def _default_token(self):
        return os.environ.get("LENS_GATE_TOKEN", "")

    budget_gate = Bool(
        True,
        config=True,
        help="Refuse spawns when the user's or a group's budget is exhausted (checked by the lens service).",
    )

    budget_gate_timeout = Float(
        5.0, config=True, help="Seconds to wait for the lens service's budget answer before refusing."
    )

    extra_lens_env = Dict(
        config=True,
        help="Extra environment for every user server (e.g. SCRATCH_BUCKET, DASK_GATEWAY__ADDRESS).",
    )

    profile: Profile | None = None
    _hold_id: int | None = None

    # -- catalog -----------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return cached_catalog(self.profiles_path)

    def profile_unavailability(self) -> dict[str, str]:
        """Profiles that cannot run on this deployment, with the reason."""
        return local_unavailability(self.catalog)

    def user_groups(self) -> set[str]:
        return {g.name for g in getattr(self.user, "groups", [])}

    def is_admin(self) -> bool:
        return bool(getattr(self.user, "admin", False))

    def profile_rates(self) -> dict[str, float | None]:
        return {p.slug: hourly_rate(p) for p in self.catalog.profiles}

    # -- form --------------------------------------------------------------
    async def lens_options_form(self, spawner=None) -> str:
        note = await self.budget_note()
        return render_form(
            self.catalog,
            groups=self.user_groups(),
            admin=self.is_admin(),
            rates=self.profile_rates(),
            unavailable=self.profile_unavailability(),
            budget_note=note,
            selected=(self.user_options or {}).get("profile"),
        )

    def lens_options_from_form(self, formdata: dict) -> dict:
        profile = formdata.get("profile") or [""]
        return {"profile": profile[0] if isinstance(profile, list) else profile}

    # -- selection ---------------------------------------------------------
    async def apply_profile_options(self, user_options: dict) -> None:
        try:
            profile = select_profile(
                self.catalog,
                user_options,
                self.user_groups(),
                admin=self.is_admin(),
                unavailable=self.profile_unavailability(),
            )
        except ProfileError as exc:
            raise SpawnException(exc.message, reason="profile", status_code=exc.status) from None
        self.profile = profile
        self.log.info("Profile %s selected for %s", profile.slug, self.user.name)
        self.apply_profile(profile)

    def apply_profile(self, profile: Profile) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- lens service calls -------------------------------------------------
    async def _lens_call(self, method: str, path: str, body: dict | None = None) -> dict:
        req = HTTPRequest(
            self.lens_service_url.rstrip("/") + "/" + path.lstrip("/"),
            method=method,
            headers={"Authorization": f"token {self.lens_api_token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None,
            request_timeout=self.budget_gate_timeout,
        )
        resp = await AsyncHTTPClient().fetch(req)
        return json.loads(resp.body or b"{}")

    async def budget_note(self) -> str | None:
        if not (self.budget_gate and self.lens_service_url):
            return None
        try:
            status = await self._lens_call("GET", f"api/budget/check?user={self.user.name}&category=servers")
        except Exception as exc:  # the form must render even if the service is down
            self.log.warning("lens service unreachable for budget note: %s", exc)
            return None
        return status.get("summary")

    async def check_budget(self, profile: Profile) -> None:
        """Budget gate: the lens service holds an hour of this profile's rate against
        every budget of the user (race-safe), or refuses with the reason."""
        self._hold_id = None
        if not (self.budget_gate and self.lens_service_url):
            return
        body = {
            "user": self.user.name,
            "category": "servers",
            "rate": hourly_rate(profile) or 0.0,
            "ref": f"server:{self.user.name}/{self.name or ''}",
        }
        try:
            status = await self._lens_call("POST", "api/budget/hold", body)
        except HTTPClientError as exc:
            if exc.code == 403 and exc.response is not None:
                try:
                    message = json.loads(exc.response.body).get("message")
                except ValueError:
                    message = None
                raise SpawnException(
                    message or "Your budget is exhausted.", reason="budget", status_code=403
                ) from None
            raise SpawnException(
                "The budget service could not confirm your budget; try again shortly.",
                reason="budget-unavailable",
                status_code=503,
                log_message=f"lens budget hold failed: {exc}",
            ) from None
        except OSError as exc:
            raise SpawnException(
                "The budget service is unreachable; try again shortly.",
                reason="budget-unavailable",
                status_code=503,
                log_message=f"lens budget hold failed: {exc}",
            ) from None
        self._hold_id = status.get("hold_id")

    async def release_budget_hold(self) -> None:
        hold_id, self._hold_id = getattr(self, "_hold_id", None), None
        if hold_id is None or not self.lens_service_url:
            return
        try:
            await self._lens_call("POST", "api/budget/release", {"hold_id": hold_id})
        except Exception as exc:
            self.log.warning("releasing budget hold %s failed: %s", hold_id, exc)

    async def meter_event(self, event: str) -> None:
        """Tell the lens service a server started or stopped, for metering."""
        if not (self.lens_service_url and self.profile):
            return
        body = {
            "user": self.user.name,
            "server": self.name or "",
            "profile": self.profile.slug,
            "rate": hourly_rate(self.profile) or 0.0,
            "event": event,
        }
        if event == "start" and getattr(self, "_hold_id", None) is not None:
            body["hold_id"] = self._hold_id
            self._hold_id = None  # metering takes the hold over
        try:
            await self._lens_call("POST", "api/meter/servers", body)
        except Exception as exc:
            self.log.warning("metering %s for %s failed: %s", event, self.user.name, exc)

    # -- environment ---------------------------------------------------------
    def lens_env(self) -> dict[str, str]:
        env = {
            "LENS_SERVICE_URL": self.lens_public_service_url,
            "LENS_PROFILE": self.profile.slug if self.profile else "",
            "LENS_HOURLY_COST": str(hourly_rate(self.profile) or 0) if self.profile else "0",
        }
        env.update({k: str(v).replace("{username}", self.user.name) for k, v in self.extra_lens_env.items()})
        return env
