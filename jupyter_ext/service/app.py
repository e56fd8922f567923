"""The lens hub service: a JupyterHub managed service (tornado + SQLAlchemy).

Run by the hub as ``python -m jupyter_ext.service``; it reads the standard
JUPYTERHUB_* environment the hub gives managed services.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from urllib.parse import urlparse

from tornado import web
from tornado.log import access_log
from traitlets import Enum, Integer, List, Unicode, default
from traitlets.config import Application

from jupyter_ext.clients.hub import HubClient

from .. import __version__
from ..db.engine import default_url, make_engine
from ..db.migrate import POLICIES, SchemaError, ensure_schema
from .base import NotFoundHandler, scrub_uri
from .handlers import core_handlers
from .oauth import LensHubOAuth, LensOAuthCallbackHandler


class LensService(Application):
    name = "lens-service"
    version = __version__
    description = "lens: jobs broker, ledger and budgets, archive catalog, admin UI"

    db_url = Unicode(config=True, help="SQLAlchemy URL of the lens database (default: $LENS_DB_URL, "
                     "else SQLite at $LENS_STATE_DIR/lens.sqlite; PostgreSQL in production).")

    @default("db_url")
    def _default_db_url(self):
        return default_url()

    db_upgrade = Enum(
        list(POLICIES),
        "auto",
        config=True,
        help="What the service does at start with a database whose schema is behind this lens "
        "(an empty one is always created): 'auto' upgrades a SQLite database made before lens had "
        "schema versions (after a backup copy) and refuses anything else; 'always' upgrades any "
        "older schema; 'never' refuses. Refusing stops the service with a message naming "
        "`lens db upgrade`.",
    )

    service_url = Unicode(config=True, help="Where to listen (default: $JUPYTERHUB_SERVICE_URL).")

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8020")

    prefix = Unicode(config=True, help="URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX).")

    @default("prefix")
    def _default_prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/lens/")

    max_request_bytes = Integer(
        1024 * 1024,
        min=1024,
        config=True,
        help="Largest request body accepted, in bytes; a larger one gets 413 with a JSON message. "
        "The HTTP server itself closes connections whose body is over 8 times this.",
    )

    trusted_services = List(
        Unicode(),
        ["lens-gate", "dask-gateway"],
        config=True,
        help="Hub services allowed to call the internal routes (budget checks, metering).",
    )

    # Areas plug in as jupyter_ext/service/<name>.py with setup(lens) -> handlers.
    area_modules = List(
        Unicode(),
        ["costs_routes", "jobs_routes", "archive_routes", "dask_routes", "dashboard_routes", "workshop_routes",
         "share_routes"],
        config=True,
        help="Route modules under jupyter_ext.service loaded if present; each has setup(lens, prefix).",
    )

    def initialize(self, argv=None):
        super().initialize(argv)
        config_file = os.environ.get("LENS_SERVICE_CONFIG")
        if config_file:
            # e.g. c.AtomSettings.backends = ["local", "slurm"]; see README "Backends"
            self.load_config_file(config_file)
        self.engine = make_engine(self.db_url)
        try:
            ensure_schema(self.engine, self.db_upgrade)
        except SchemaError as exc:
            self.log.critical("lens service not started: %s", exc)
            self.exit(1)
        self.periodic: list[tuple[float, object]] = []
        self.startup: list[object] = []
        # The login redirect (LensPageHandler) and the callback share this object: it holds
        # each pending login's state and PKCE verifier (jupyter_ext.service.oauth).
        self.hub_auth = LensHubOAuth(
            api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            cache_max_age=60,
            access_scopes={"access:services!service=lens"},
        )
        # The hub's REST API, with the service's own token (jupyter_ext.clients).
        self.hub = HubClient(self.hub_auth.api_url, self.hub_auth.api_token, timeout=20)

    def add_startup(self, func) -> None:
        """Run `func()` (sync or async) once before the service starts listening."""
        self.startup.append(func)

    def add_periodic(self, seconds: float, func) -> None:
        """Run `func()` (sync or async) every `seconds` while the service runs."""
        self.periodic.append((seconds, func))

    def area_handlers(self, prefix: str) -> list[tuple]:
        handlers = []
        for name in self.area_modules:
            try:
                module = importlib.import_module(f"jupyter_ext.service.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"jupyter_ext.service.{name}":
                    continue
                raise
            handlers.extend(module.setup(self, prefix))
        return handlers

    async def _run_periodic(self, seconds: float, func) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                result = func()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("periodic task %s failed", getattr(func, "__name__", func))

    def make_app(self) -> web.Application:
        prefix = self.prefix if self.prefix.endswith("/") else self.prefix + "/"
        handlers = [
            *self.area_handlers(prefix),
            *core_handlers(prefix),
            (rf"{prefix}oauth_callback", LensOAuthCallbackHandler),
        ]
        return web.Application(
            handlers,
            hub_auth=self.hub_auth,
            lens=self,
            cookie_secret=self.cookie_secret(),
            xsrf_cookies=False,
            log_function=log_request,
            default_handler_class=NotFoundHandler,
        )

    def cookie_secret(self) -> bytes:
        """Persisted, so browser sessions survive a service restart."""
        state = os.environ.get("LENS_STATE_DIR")
        path = os.path.join(state, "secrets", "lens-cookie.token") if state else ""
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                return f.read().strip()
        return os.urandom(32)

    async def serve(self):
        url = urlparse(self.service_url)
        app = self.make_app()
        for func in self.startup:
            result = func()
            if asyncio.iscoroutine(result):
                await result
        app.listen(url.port or 80, url.hostname or "127.0.0.1", xheaders=True,
                   max_body_size=8 * self.max_request_bytes)
        self._tasks = [asyncio.create_task(self._run_periodic(sec, fn)) for sec, fn in self.periodic]
        self.log.info("lens service listening on %s%s", self.service_url, self.prefix)
        await asyncio.Event().wait()

    def start(self):
        asyncio.run(self.serve())


def main(argv=None):
    LensService.launch_instance(argv)


def log_request(handler) -> None:
    """Tornado's access log line, with secrets in the query string masked."""
    status = handler.get_status()
    log = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    request = handler.request
    log("%d %s %s (%s) %.2fms", status, request.method, scrub_uri(request.uri), request.remote_ip,
        1000.0 * request.request_time())
