"""dask-gateway backends for lens.

``LensBackendMixin`` adds, to any dask-gateway DB backend:
- per-user limits (clusters, cores, memory; see ``limits``) and the budget
  check before a cluster is created;
- the data environment for schedulers and workers (scratch bucket, S3 endpoint);
- four routes: ``GET /api/v1/lens/usage``,
  ``GET /api/v1/lens/clusters/{name}/owner`` (the dashboard hop's ownership
  check) and ``DELETE /api/v1/lens/users/{user}/clusters`` (the gateway's own
  service token only), and ``GET /api/v1/lens/costs`` (any user, own clusters only).

``LensLocalBackend`` runs each cluster as the unix account ``jupyter-NAME``
(needs root) and fixes dask-gateway-server 2026.3.0's
``setup_working_directory``, which called ``paths.extend(cert_path)`` and so
chowned every one-letter path -- ``/`` first -- to the user.
"""

from __future__ import annotations

import asyncio
import grp
import hmac
import os
import pwd
import tempfile
import time
from collections import defaultdict

from aiohttp import web
from dask_gateway_server.backends.base import Backend, PublicException
from dask_gateway_server.backends.local import LocalBackend, UnsafeLocalBackend
from dask_gateway_server.routes import api_handler
from traitlets import Type, Unicode, default

from jupyter_ext.gateway.budget import BudgetError, check_budget
from jupyter_ext.gateway.limits import LimitError, plan_caps
from jupyter_ext.gateway.metering import Rates, live_costs
from jupyter_ext.gateway.options import worker_gpus
from jupyter_ext.gateway.settings import GatewaySettings
from jupyter_ext.hub.dask_env import scratch_url
from jupyter_ext.upstream import check as check_patch


def cluster_record(cluster, rates: Rates | None = None) -> dict:
    """A DB cluster as the JSON the metering functions read (with the worker rate
    in micro-USD per hour when ``rates`` is given)."""
    workers = [
        {
            "name": w.name,
            "status": w.status.name,
            "start_time": w.start_time,
            "stop_time": w.stop_time,
        }
        for w in cluster.workers.values()
    ]
    return make_record(
        name=cluster.name,
        username=cluster.username,
        status=cluster.status.name,
        start_time=cluster.start_time,
        stop_time=cluster.stop_time,
        config=cluster.config,
        workers=workers,
        rates=rates,
    )


def make_record(
    *, name, username, status, start_time, stop_time, config, workers, rates: Rates | None = None
) -> dict:
    """One cluster of the usage snapshot; every backend builds its records here.
    ``workers``: dicts with name, status, start_time, stop_time (ms)."""
    config = dict(config)
    record = {
        "name": name,
        "username": username,
        "status": status,
        "start_time": start_time,
        "stop_time": stop_time,
        "worker_cores": config.get("worker_cores"),
        "worker_memory": config.get("worker_memory"),
        "worker_gpus": worker_gpus(config),
        "cluster_max_workers": config.get("cluster_max_workers"),
        "workers": list(workers),
    }
    if rates is not None:
        record["rate_microusd_per_hour"] = rates.worker_rate(
            float(config.get("worker_cores") or 1), int(config.get("worker_memory") or 0), worker_gpus(config)
        )
    return record



def requested_caps(config) -> dict:
    """What a cluster's config asks for, as ``plan_caps`` takes it. The cluster_max_*
    values are the operator's c.ClusterConfig caps: lens only ever lowers them."""
    return {name: getattr(config, name) for name in (
        "worker_cores", "worker_memory", "scheduler_cores", "scheduler_memory",
        "cluster_max_cores", "cluster_max_memory", "cluster_max_workers")}

class LensBackendMixin(Backend):
    """Limits, budget, data environment and lens routes for a DBBackendBase."""

    admin_api_token = Unicode(
        help="Token that may call the lens admin routes (default: $JUPYTERHUB_API_TOKEN, "
        "the gateway's own hub service token). Empty disables them.",
        config=True,
    )

    @default("admin_api_token")
    def _default_admin_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @property
    def lens(self) -> GatewaySettings:
        if getattr(self, "_lens_settings", None) is None:
            self._lens_settings = GatewaySettings(parent=self)
        return self._lens_settings

    def check_user(self, username: str) -> None:
        """Raise PublicException when the user cannot run clusters here."""
        if username.startswith("service:"):
            raise PublicException("services cannot create Dask clusters")

    # --- cluster creation ---------------------------------------------------
    def _user_lock(self, username: str) -> asyncio.Lock:
        if getattr(self, "_lens_locks", None) is None:
            self._lens_locks = defaultdict(asyncio.Lock)
        return self._lens_locks[username]

    async def start_cluster(self, user, cluster_options):
        # One creation at a time per user, so two requests cannot both pass the limits.
        async with self._user_lock(user.name):
            return await super().start_cluster(user, cluster_options)

    async def process_cluster_options(self, user, request):
        self.check_user(user.name)
        options, config = await super().process_cluster_options(user, request)
        settings = self.lens
        try:
            caps = plan_caps(
                self.lens_active_configs(user.name),
                requested_caps(config),
                settings,
            )
        except LimitError as exc:
            raise PublicException(str(exc)) from None
        config.cluster_max_cores = caps.cluster_max_cores
        config.cluster_max_memory = caps.cluster_max_memory
        config.cluster_max_workers = caps.cluster_max_workers
        env = {k: os.environ[k] for k in settings.forwarded_environment if k in os.environ}
        prefix = settings.worker_env_prefix
        if prefix:
            env.update({k[len(prefix):]: v for k, v in os.environ.items() if k.startswith(prefix) and len(k) > len(prefix)})
        env["SCRATCH_BUCKET"] = scratch_url(user.name, settings)
        env.update(config.environment)
        config.environment = env
        if settings.lens_service_url:
            try:
                await check_budget(
                    settings.lens_service_url,
                    user.name,
                    category=settings.budget_category,
                    token=self.admin_api_token,
                    request_timeout=settings.budget_timeout,
                )
            except BudgetError as exc:
                raise PublicException(str(exc)) from None
        return options, config

    # --- where the clusters are: DB backends read self.db (LensKubeBackend: its CRD cache) ---
    def lens_active_configs(self, username: str) -> list[dict]:
        """The configs of the user's active clusters (what the limits count)."""
        return [dict(c.config) for c in self.db.list_clusters(username=username) if c.is_active()]

    def lens_active_names(self, username: str) -> list[str]:
        return [c.name for c in self.db.list_clusters(username=username) if c.is_active()]

    def lens_cluster_records(self, username: str | None = None) -> list[dict]:
        """Every remembered cluster with its workers' start/stop times (``cluster_record``)."""
        rates = Rates.from_settings(self.lens)
        return [
            cluster_record(c, rates)
            for c in list(self.db.name_to_cluster.values())
            if username is None or c.username == username
        ]

    # --- lens routes ----------------------------------------------------------
    async def setup(self, app):
        await super().setup(app)
        self.add_lens_routes(app)

    def add_lens_routes(self, app) -> None:
        app.router.add_get("/api/v1/lens/usage", self._usage_route)
        app.router.add_get("/api/v1/lens/clusters/{name}/owner", self._owner_route)
        app.router.add_delete("/api/v1/lens/users/{username}/clusters", self._stop_user_route)
        app.router.add_get("/api/v1/lens/costs", api_handler(self._costs_route, user_authenticated=True))

    def _require_admin(self, request) -> None:
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        ok = (
            bool(self.admin_api_token)
            and kind.lower() == "token"
            and hmac.compare_digest(token.encode(), self.admin_api_token.encode())
        )
        if not ok:
            raise web.HTTPForbidden(
                text='{"error": "the lens admin routes need the gateway service token"}',
                content_type="application/json",
            )

    def now_ms(self) -> int:
        """The gateway's clock (ms since the epoch) for usage snapshots."""
        return int(time.time() * 1000)

    def usage_snapshot(self, username: str | None = None) -> dict:
        now = self.now_ms()
        return {"now": now, "clusters": self.lens_cluster_records(username)}

    async def _usage_route(self, request):
        self._require_admin(request)
        return web.json_response(self.usage_snapshot())

    async def _owner_route(self, request):
        """Who owns a cluster (running or not): the lens service's dashboard hop asks."""
        self._require_admin(request)
        cluster = await self.get_cluster(request.match_info["name"])
        if cluster is None:
            raise web.HTTPNotFound(text='{"error": "no such cluster"}', content_type="application/json")
        return web.json_response({"name": cluster.name, "user": cluster.username})

    async def _stop_user_route(self, request):
        self._require_admin(request)
        username = request.match_info["username"]
        stopped = []
        for name in self.lens_active_names(username):
            await self.stop_cluster(name)
            stopped.append(name)
        self.log.info("Stopped %d cluster(s) of user %s on request", len(stopped), username)
        return web.json_response({"user": username, "stopped": stopped})

    async def _costs_route(self, request):
        user = request["user"]
        snapshot = self.usage_snapshot(username=user.name)
        return web.json_response(
            {"user": user.name, "clusters": live_costs(snapshot, Rates.from_settings(self.lens))}
        )


def cluster_config_trait(path: str) -> Type:
    """Upstream's ``cluster_config_class`` trait defaulting to the class at ``path``
    (imported when the backend is made, not with this module)."""
    return Type(
        path,
        klass="dask_gateway_server.backends.base.ClusterConfig",
        help="The cluster config class (upstream's trait); lens's subclass only adds default "
        "per-cluster caps, and c.ClusterConfig.* set by the operator always applies.",
        config=True,
    )


class LensLocalBackend(LensBackendMixin, LocalBackend):
    """Local processes run as the unix account ``jupyter-NAME`` (the gateway runs as root)."""

    cluster_config_class = cluster_config_trait("jupyter_ext.gateway.cluster_config.LensLocalClusterConfig")

    def unix_user(self, username: str) -> pwd.struct_passwd:
        return pwd.getpwnam(self.lens.unix_user(username))

    def check_user(self, username: str) -> None:
        super().check_user(username)
        try:
            self.unix_user(username)
        except KeyError:
            raise PublicException(
                f"no unix account {self.lens.unix_user(username)!r} for user {username!r}; "
                "start your Jupyter server once so that the hub creates it"
            ) from None

    def set_file_permissions(self, paths, username):
        pw = self.unix_user(username)
        for p in paths:
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def make_preexec_fn(self, cluster):  # pragma: no cover - runs in the child
        pw = self.unix_user(cluster.username)
        uid, gid = pw.pw_uid, pw.pw_gid
        groups = [g.gr_gid for g in grp.getgrall() if pw.pw_name in g.gr_mem]
        workdir = cluster.state["workdir"]

        def preexec():
            os.setgid(gid)
            os.setgroups(groups)
            os.setuid(uid)
            os.chdir(workdir)

        return preexec

    def get_env(self, cluster):
        env = super().get_env(cluster)
        pw = self.unix_user(cluster.username)
        env["USER"] = pw.pw_name
        env["HOME"] = pw.pw_dir
        return env

    def setup_working_directory(self, cluster):
        """Upstream's method with ``paths.append`` (not ``extend``) and a containment check.

        Written for dask-gateway-server 2026.3.0 (no upstream issue found; see
        ``jupyter_ext.upstream.PATCHES``); on another version it still runs,
        since it is the safe variant, and a warning asks for a review.
        """
        check_patch("dask-gateway-server.setup_working_directory", self.log)
        if self.clusters_directory:
            workdir = os.path.join(self.clusters_directory, cluster.name)
        else:
            workdir = tempfile.mkdtemp(prefix="dask", suffix=cluster.name)
        certsdir = self.get_certs_directory(workdir)
        logsdir = self.get_logs_directory(workdir)
        paths = [workdir, certsdir, logsdir]
        for path in paths:
            os.makedirs(path, 0o700, exist_ok=True)
        cert_path, key_path = self._get_tls_paths(workdir)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        for path, data in [(cert_path, cluster.tls_cert), (key_path, cluster.tls_key)]:
            with os.fdopen(os.open(path, flags, 0o600), "wb") as fil:
                fil.write(data)
            paths.append(path)
        root = os.path.realpath(workdir)
        for path in paths:
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                raise RuntimeError(f"refusing to chown {path!r} outside {workdir!r}")
        self.set_file_permissions(paths, cluster.username)
        self.log.debug("Working directory %s for cluster %s created", workdir, cluster.name)
        return workdir


class LensUnsafeLocalBackend(LensBackendMixin, UnsafeLocalBackend):
    """Every cluster runs as the gateway's own user (lens not run as root)."""

    cluster_config_class = cluster_config_trait("jupyter_ext.gateway.cluster_config.LensLocalClusterConfig")
