"""What every lens spawner shares: the catalog, the form, group access, the
budget gate, metering events and the environment given to user servers.

Both ``LocalProfileSpawner`` and ``KubeProfileSpawner`` mix this in; they only
say how a chosen profile becomes their own settings (``apply_profile``) and build
their process or pod (the next class in the MRO: ``LocalProcessSpawner`` /
``KubeSpawner``).

The lifecycle lives here, once (template method): ``run_pre_spawn_hook`` takes
the budget hold, then waits for a start slot (``spawners/admission.py``: a
first-come line sized to the machine, shown in the progress events); ``start()`` runs the spawner's ``before_start()``, makes the
scratch folder, starts the process/pod, waits until it listens, gives the slot
back and opens the metering interval, or releases the hold if anything of that fails; ``stop()`` stops the process/pod,
then the owner's Dask clusters, closes the interval and runs ``after_stop()``;
``poll()`` closes the interval as soon as a server is found dead.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import UTC, datetime
from html import escape

from jupyterhub.utils import maybe_future
from traitlets import Bool, Dict, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from jupyter_ext.clients.base import PeerError
from jupyter_ext.clients.lens import LensClient
from jupyter_ext.clients.outbox import Outbox, ensure_flusher
from jupyter_ext.costs.usage import server_ref
from jupyter_ext.paths import config_file, state_dir

from . import admission
from .availability import local_unavailability
from .errors import SpawnException
from .form import render_form
from .pricing import hourly_rate
from .profile_options import UNLISTED_CHOICE, UNLISTED_SUFFIX, ChoiceError, resolve_options
from .profiles import Catalog, Profile, ProfileError, load_catalog, select_profile

_catalog_cache: dict[str, tuple[float, Catalog]] = {}
_outboxes: dict[str, Outbox] = {}

# What a profile option's kubespawner_override may set on a local spawner
# (plus ``environment``); other keys (image, node_selector, ...) are kubespawner's.
LOCAL_OPTION_TRAITS = ("default_url", "mem_limit", "mem_guarantee", "cpu_limit", "cpu_guarantee")


def apply_local_options(spawner, choices: list[tuple[str, str, dict]]) -> dict[str, str]:
    """Apply chosen profile options to a non-Kubernetes spawner; return their environment.

    ``environment`` entries are returned (``None`` removes an earlier option's
    entry); the keys in ``LOCAL_OPTION_TRAITS`` are set on the spawner;
    the rest only mean something on Kubernetes and are logged and skipped.
    """
    env: dict[str, str] = {}
    for name, _, override in choices:
        for key, value in override.items():
            if key == "environment" and isinstance(value, dict):
                for var, val in value.items():
                    if val is None:
                        env.pop(var, None)
                    else:
                        env[var] = str(val)
            elif key in LOCAL_OPTION_TRAITS:
                setattr(spawner, key, value)
            else:
                spawner.log.debug("profile option %s: %r applies on Kubernetes only", name, key)
    return env


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
        return str(config_file("profiles.yaml"))

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

    lens_outbox_path = Unicode(
        config=True,
        help="SQLite file keeping metering events the lens service could not take yet (retried in "
        "order, once each). Default: lens-outbox.sqlite in the state directory ($LENS_STATE_DIR, else ./state).",
    )

    @default("lens_outbox_path")
    def _default_outbox_path(self):
        return str(state_dir() / "lens-outbox.sqlite")

    lens_outbox_interval = Float(
        30.0, config=True, help="Seconds between retries of kept metering events (also tried at every event)."
    )

    start_capacity = Float(
        None,
        allow_none=True,
        config=True,
        help="CPU-seconds of server starts the machine takes on at once (each start costs its profile's "
        "start_cost). Starts beyond it wait in a first-come line and see their place and an estimate. "
        "Default: 6 per core of this machine locally; 0 turns the line off (Kubernetes, where the "
        "scheduler places pods).",
    )

    @default("start_capacity")
    def _default_start_capacity(self):
        return admission.default_capacity(admission.machine_cores())

    start_poll_interval = Float(
        1.0, config=True, help="Seconds between progress events while a spawn waits for a start slot."
    )

    gpu_count = Integer(
        None,
        allow_none=True,
        config=True,
        help="GPUs this machine offers to GPU profiles (local spawner). Default: the NVIDIA devices "
        "in /dev. Locally a GPU is not isolated per server; on Kubernetes the device plugin does it.",
    )

    dask_gateway = Bool(
        False,
        config=True,
        help="A dask-gateway hub service runs: give servers its zero-config environment and stop "
        "a user's clusters when their server stops.",
    )

    dask_gateway_token = Unicode(
        config=True, help="The dask-gateway service's token, used to stop a user's clusters."
    )

    dask_gateway_url = Unicode(
        config=True,
        help="The gateway as the hub reaches it (e.g. http://traefik-lens-dask-gateway.lens.svc"
        ".cluster.local/services/dask-gateway), for stopping a user's clusters with their server. "
        "Setting it turns that stop on even without dask_gateway (Kubernetes, where the chart "
        "gives servers the gateway's environment). Empty: $LENS_GATEWAY_URL or the local gateway.",
    )

    hub_public_url = Unicode(
        "http://127.0.0.1:8000", config=True, help="The hub's address as user servers reach it."
    )

    extra_lens_env = Dict(
        config=True,
        help="Extra environment for every user server (e.g. SCRATCH_BUCKET, DASK_GATEWAY__ADDRESS).",
    )

    auth_cache_seconds = Integer(
        5,
        config=True,
        help="Seconds a user server trusts the hub's answer about who a token belongs to and what it may "
        "do (HubOAuth.cache_max_age; JupyterHub's default is 300). A revoked share or token stops working "
        "within this long: lower means sooner, at one more hub call per active visitor per period.",
    )

    # The catalog drives the form and the selection for every lens spawner.
    @default("options_form")
    def _default_options_form(self):
        return self.lens_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return self.lens_options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, options: spawner.apply_profile_options(options)

    profile: Profile | None = None
    # The chosen profile_options: [(name, choice slug or free value, kubespawner_override)].
    profile_choices: list[tuple[str, str, dict]] = []
    _hold_id: int | None = None
    _meter_open = False  # a "start" was sent and no "stop" yet
    _start_ticket: admission.Ticket | None = None
    _configured_timeouts: tuple[float, float] | None = None

    # -- catalog -----------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return cached_catalog(self.profiles_path)

    def profile_unavailability(self) -> dict[str, str]:
        """Profiles that cannot run on this deployment, with the reason."""
        return local_unavailability(self.catalog, gpu_count=self.gpu_count)

    def user_groups(self) -> set[str]:
        return {g.name for g in getattr(self.user, "groups", [])}

    def is_admin(self) -> bool:
        return bool(getattr(self.user, "admin", False))

    def profile_rates(self) -> dict[str, float | None]:
        return {p.slug: hourly_rate(p) for p in self.catalog.profiles}

    # -- workshops (jupyter_ext.workshop): students see and start only their profiles --
    async def workshop_rules(self):
        from jupyter_ext.hub.workshop_restriction import SpawnRules, spawn_rules

        if self.is_admin():
            return SpawnRules()
        return await asyncio.to_thread(spawn_rules, self.user_groups(), None,
                                       getattr(self.user, "name", None))

    def restricted_catalog(self, rules) -> Catalog:
        if rules.allowed is None:
            return self.catalog
        return replace(self.catalog, profiles=tuple(p for p in self.catalog.profiles if p.slug in rules.allowed))

    # -- form --------------------------------------------------------------
    async def lens_options_form(self, spawner=None) -> str:
        note = await self.budget_note()
        rules = await self.workshop_rules()
        if rules.refusal:
            return f'<p class="alert alert-danger">{escape(rules.refusal)}</p>'
        return render_form(
            self.restricted_catalog(rules),
            groups=self.user_groups(),
            admin=self.is_admin(),
            rates=self.profile_rates(),
            unavailable=self.profile_unavailability(),
            budget_note=note,
            selected=(self.user_options or {}).get("profile"),
            selected_options=self.user_options or {},
        )

    def lens_options_from_form(self, formdata: dict) -> dict:
        """kubespawner's form names: ``profile`` and ``profile-option-SLUG--NAME[--unlisted-choice]``."""
        profile = formdata.get("profile") or [""]
        slug = profile[0] if isinstance(profile, list) else profile
        options = {"profile": slug}
        prefix = f"profile-option-{slug}--"
        picked = {}
        for key, value in formdata.items():
            if slug and key.startswith(prefix):
                value = value[0] if isinstance(value, list) else value
                picked[key[len(prefix):]] = value
        for key, value in picked.items():
            if key.endswith(UNLISTED_SUFFIX):
                if key[: -len(UNLISTED_SUFFIX)] not in picked and value:
                    options[key] = value  # an option with no listed choices: only the text field
                continue
            unlisted = picked.get(key + UNLISTED_SUFFIX)
            if value == UNLISTED_CHOICE:
                # the form's "Other..." entry (kubespawner's value): the free value is the choice
                if unlisted:
                    options[key + UNLISTED_SUFFIX] = unlisted
            elif value:
                options[key] = value
        return options

    # -- selection ---------------------------------------------------------
    async def apply_profile_options(self, user_options: dict) -> None:
        rules = await self.workshop_rules()
        if rules.refusal:
            raise SpawnException(rules.refusal, reason="workshop", status_code=403)
        if rules.allowed is not None and not (user_options or {}).get("profile"):
            first = next((p.slug for p in self.catalog.profiles if p.slug in rules.allowed), None)
            user_options = {**(user_options or {}), "profile": first}
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
        if rules.allowed is not None and profile.slug not in rules.allowed:
            raise SpawnException(
                f"Profile {profile.slug!r} is not part of your workshop "
                f"({', '.join(rules.workshops)}); allowed: {', '.join(sorted(rules.allowed))}.",
                reason="profile",
                status_code=403,
            )
        try:
            choices = resolve_options(profile.profile_options, user_options)
        except ChoiceError as exc:
            raise SpawnException(str(exc), reason="profile", status_code=400) from None
        self.profile = profile
        self.profile_choices = choices
        self.log.info(
            "Profile %s selected for %s%s", profile.slug, self.user.name,
            "".join(f", {name}={value!r}" for name, value, _ in choices),
        )
        self.apply_profile(profile)
        if rules.default_url and profile.interface == "lab":
            self.default_url = rules.default_url  # nbgitpuller: pull the course, then open it

    def apply_profile(self, profile: Profile) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_args(self) -> list[str]:
        args = super().get_args()
        args.append(f"--HubOAuth.cache_max_age={self.auth_cache_seconds}")
        if self.profile and not self.profile.collaboration:
            # jupyter-collaboration's own switch: JupyterLab opens documents without the shared
            # (Yjs) model, as it would without the package.
            args.append("--YDocExtension.disable_rtc=True")
        if self.profile and self.profile.idle_timeout:
            # The server also stops itself when idle, so per-profile timeouts
            # hold even where the hub's culler uses the global default; a server
            # prewarmed for a class waits for it too (jupyter_ext/workshop/prewarm.py).
            from jupyter_ext.workshop.prewarm import held

            idle = self.profile.idle_timeout + int(held(self.user.name))
            args.append(f"--ServerApp.shutdown_no_activity_timeout={idle}")
            args.append(f"--MappingKernelManager.cull_idle_timeout={self.profile.idle_timeout}")
        return args

    # The chosen profile is part of the server's state, so it survives hub restarts.
    def get_state(self):
        state = super().get_state()
        if self.profile:
            state["profile"] = self.profile.slug
        if self._meter_open:
            state["metered"] = True
        return state

    def load_state(self, state):
        super().load_state(state)
        self.resume_metering_outbox()
        slug = state.get("profile")
        if slug:
            self.profile = self.catalog.get(slug)
        # a server saved before this flag existed was metered when it had a profile
        self._meter_open = bool(state.get("metered", slug is not None))

    # -- lens service calls -------------------------------------------------
    def lens_client(self) -> LensClient:
        """The lens service with the 'lens-gate' token (jupyter_ext.clients: timeouts,
        retries of idempotent calls only, PeerError)."""
        return LensClient(self.lens_service_url, self.lens_api_token, timeout=self.budget_gate_timeout)

    def metering_outbox(self) -> Outbox:
        """Metering events wait here while the lens service cannot take them; the same file
        for every spawner of the hub, flushed on a timer in the hub's loop."""
        box = _outboxes.get(self.lens_outbox_path)
        if box is None:
            box = _outboxes[self.lens_outbox_path] = Outbox(self.lens_outbox_path)
        ensure_flusher(box, self.lens_client(), self.lens_outbox_interval)
        return box

    def resume_metering_outbox(self) -> None:
        """Events kept by an earlier hub process: start their retries (hub start, first form)."""
        if self.lens_service_url and os.path.exists(self.lens_outbox_path):
            self.metering_outbox()

    async def budget_note(self) -> str | None:
        self.resume_metering_outbox()
        if not (self.budget_gate and self.lens_service_url):
            return None
        try:
            status = await self.lens_client().budget_check(self.user.name, "servers")
        except PeerError as exc:  # the form must render even if the service is down
            self.log.warning("lens service unreachable for budget note: %s", exc)
            return None
        return status.get("summary")

    async def check_budget(self, profile: Profile) -> None:
        """Budget gate: the lens service holds an hour of this profile's rate against
        every budget of the user (race-safe), or refuses with the reason."""
        self._hold_id = None
        if not (self.budget_gate and self.lens_service_url):
            return
        try:
            status = await self.lens_client().budget_hold(
                self.user.name, "servers", hourly_rate(profile) or 0.0, server_ref(self.user.name, self.name or ""))
        except PeerError as exc:
            if exc.status == 403:
                raise SpawnException(exc.message or "Your budget is exhausted.", reason="budget",
                                     status_code=403) from None
            raise SpawnException(
                "The budget service is unreachable; try again shortly." if exc.unreachable
                else "The budget service could not confirm your budget; try again shortly.",
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
            await self.lens_client().budget_release(hold_id)
        except PeerError as exc:  # the service releases orphan holds itself (reconcile)
            self.log.warning("releasing budget hold %s failed: %s", hold_id, exc)

    async def meter_event(self, event: str) -> None:
        """Tell the lens service a server started or stopped, for metering.

        The event carries its time and an idempotency key and goes through the durable
        outbox: a service that is down gets it (in order, once) when it is back."""
        if not (self.lens_service_url and self.profile):
            return
        at = datetime.now(UTC)
        body = {
            "user": self.user.name,
            "server": self.name or "",
            "profile": self.profile.slug,
            "rate": hourly_rate(self.profile) or 0.0,
            "event": event,
            "at": at.isoformat(),
        }
        if event == "start" and getattr(self, "_hold_id", None) is not None:
            body["hold_id"] = self._hold_id
            self._hold_id = None  # metering takes the hold over
        group = f"meter:{server_ref(self.user.name, self.name or '')}:"  # one server's events stay in order
        key = f"{group}{event}:{at.timestamp():.6f}"
        try:
            delivered = await self.metering_outbox().send(self.lens_client(), "POST", "api/meter/servers", body, key,
                                                          group=group)
        except Exception as exc:  # stopping or starting a server never fails on metering
            self.log.warning("metering %s for %s could not be kept: %s", event, self.user.name, exc)
            return
        if not delivered:
            self.log.warning("metering %s for %s: the lens service did not take it; kept in %s for a retry",
                             event, self.user.name, self.lens_outbox_path)

    # -- environment ---------------------------------------------------------
    def lens_env(self) -> dict[str, str]:
        env = {
            "LENS_SERVICE_URL": self.lens_public_service_url,
            "LENS_PROFILE": self.profile.slug if self.profile else "",
            "LENS_HOURLY_COST": str(hourly_rate(self.profile) or 0) if self.profile else "0",
        }
        from jupyter_ext.costs.catalog import resolved_snapshot_path

        prices = resolved_snapshot_path()
        if prices is not None:  # a refreshed snapshot: archive estimates in the server use it too
            env["LENS_PRICES_FILE"] = str(prices.resolve())
        if self.dask_gateway:
            from jupyter_ext.hub.dask_env import gateway_env

            env.update(gateway_env(self.user.name, self.hub_public_url))
        env.update({k: str(v).replace("{username}", self.user.name) for k, v in self.extra_lens_env.items()})
        return env

    async def stop_dask_clusters(self) -> None:
        """Clusters die with their owner's server (stopped or culled)."""
        if not (self.dask_gateway or self.dask_gateway_url):
            return
        from jupyter_ext.hub.dask_lifecycle import stop_user_clusters

        try:
            stopped = await stop_user_clusters(
                self.user.name,
                gateway_url=self.dask_gateway_url or None,
                token=self.dask_gateway_token or None,
            )
        except Exception as exc:  # stopping the server must not fail on this
            self.log.warning("stopping %s's Dask clusters failed: %s", self.user.name, exc)
            return
        if stopped:
            self.log.info("Stopped %d Dask cluster(s) of %s with their server", len(stopped), self.user.name)

    def scratch_owner(self) -> tuple[int, int] | None:
        """(uid, gid) that should own the scratch folder; None: the hub's account."""
        return None

    def ensure_scratch(self) -> str | None:
        """``$SCRATCH_BUCKET``, when it is a local path, is a directory only its user may use.

        The root (``$LENS_STATE_DIR/scratch`` by default) may be traversed but not
        listed; each user's directory is theirs, mode 0700, so xarray/zarr (and the
        user's Dask workers, which run as the same account) can write there at once.
        A URL (``s3://...``, as on Kubernetes) needs nothing here.
        """
        path = self.lens_env().get("SCRATCH_BUCKET", "")
        if not path or "://" in path:
            return None
        root = os.path.dirname(path)
        os.makedirs(root, mode=0o711, exist_ok=True)
        os.makedirs(path, mode=0o700, exist_ok=True)
        owner = self.scratch_owner()
        if owner is not None:
            os.chown(path, *owner)
        os.chmod(path, 0o700)
        return path

    # -- start admission (spawners/admission.py) ---------------------------------
    def admission_queue(self) -> admission.AdmissionQueue | None:
        capacity = self.start_capacity or 0.0
        return admission.hub_queue(capacity) if capacity > 0 else None

    async def wait_for_start_slot(self) -> None:
        """Wait in line until the machine can take this start, then size the timeouts
        to the load the start runs beside."""
        queue = self.admission_queue()
        if queue is None or self.profile is None:
            return
        ticket = queue.enqueue(self.profile.start_cost, label=self._log_name)
        self._start_ticket = ticket
        place = queue.place(ticket)
        if place is not None:
            self.log.info("Start of %s waits for a slot: %d of %d", self._log_name, place.position, place.waiting)
        await queue.wait(ticket)
        if self._configured_timeouts is None:
            self._configured_timeouts = (self.start_timeout, self.http_timeout)
        base_start, base_http = self._configured_timeouts
        self.start_timeout = admission.load_timeout(base_start, queue.in_flight, queue.cores)
        self.http_timeout = admission.load_timeout(base_http, queue.in_flight, queue.cores)

    def release_start_slot(self) -> None:
        ticket, self._start_ticket = self._start_ticket, None
        queue = self.admission_queue()
        if ticket is not None and queue is not None:
            queue.release(ticket)

    def start_slot_event(self) -> dict | None:
        """The progress event for a start still in line, None once admitted."""
        ticket, queue = self._start_ticket, self.admission_queue()
        place = queue.place(ticket) if ticket is not None and queue is not None else None
        if place is None:
            return None
        return {
            "progress": 5,
            "message": f"Waiting for a start slot: {place.position} of {place.waiting}, "
            f"about {admission.eta_text(place.eta_seconds)} ({place.running} starting now)",
        }

    async def progress(self):
        while True:
            event = self.start_slot_event()
            if event is None:
                break
            yield event
            await asyncio.sleep(self.start_poll_interval)
        async for event in super().progress():
            yield event

    async def wait_until_listening(self, started):
        """Return once the new server accepts connections (the local spawner probes its
        port); the default trusts what start() returned."""
        return started

    # -- lifecycle (template methods; the spawner below builds the process/pod) --
    async def before_start(self) -> None:
        """Spawner-specific preparation before the process/pod starts (accounts, cgroups)."""

    async def after_stop(self) -> None:
        """Spawner-specific cleanup after the process/pod and the metering are stopped."""

    async def run_pre_spawn_hook(self):
        """Budget gate first, then the configured hook; a failing hook gives the hold back."""
        if self.profile is not None:
            await self.check_budget(self.profile)
        try:
            # Spawner.run_pre_spawn_hook returns None without a hook, else maybe a future.
            result = await maybe_future(super().run_pre_spawn_hook())
            # The line comes last, outside the hub's start_timeout: waiting is not starting.
            await self.wait_for_start_slot()
            return result
        except BaseException:
            self.release_start_slot()
            await self.release_budget_hold()
            raise

    async def start(self):
        try:
            await self.before_start()
            self.ensure_scratch()
            result = await self.wait_until_listening(await super().start())
        except BaseException:  # also cancellation (the hub's start_timeout)
            await self.release_budget_hold()
            raise
        finally:
            self.release_start_slot()
        await self.meter_event("start")
        self._meter_open = True
        return result

    async def close_meter(self) -> None:
        """Close the metering interval once (poll and stop may both notice the end)."""
        if self._meter_open:
            self._meter_open = False
            await self.meter_event("stop")

    async def stop(self, now=False):
        self.release_start_slot()
        await super().stop(now=now)
        await self.stop_dask_clusters()
        await self.close_meter()
        await self.after_stop()

    async def poll(self):
        status = await super().poll()
        if status is not None:
            await self.close_meter()
        return status
