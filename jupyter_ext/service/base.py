"""Base handler of the lens service: hub OAuth identity, JSON errors, access rules."""

from __future__ import annotations

import json
import re
import traceback

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from tornado import web

from jupyter_ext.upstream import check

# Query parameters that carry secrets (a token in the URL, OAuth's code and state):
# tornado logs each request's full URI, so these are masked first.
SECRET_PARAMS = re.compile(r"(?i)([?&;](?:token|access_token|api_token|code|state|_xsrf|password)=)[^&;#]*")


def scrub_uri(uri: str) -> str:
    return SECRET_PARAMS.sub(r"\1[secret]", uri)


class LensHandler(HubOAuthenticated, web.RequestHandler):
    """Every lens handler is authenticated by the hub (token or OAuth cookie)."""

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    async def prepare(self):
        """Identify the caller without blocking the event loop.

        The stock ``HubAuthenticated.get_current_user`` asks the hub synchronously
        (``HubAuth.get_user(sync=True)``) on every token-cache miss, which freezes
        this whole service for the hub's round trip. Under a login/spawn storm the
        hub takes seconds to answer, and every queued request (the hub's budget
        checks, with their short deadline) times out. Resolve it asynchronously
        here; ``get_current_user`` then returns the cached model.
        """
        self.check_body_size()
        if hasattr(self, "_hub_auth_user_cache"):
            return
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            self._hub_auth_user_cache = None
            return
        try:
            self._hub_auth_user_cache = self.check_hub_user(model)
        except UserNotAllowed:
            return  # the stock get_current_user refuses it (403), from the warm cache
        check("jupyterhub.hub_auth_private", self.log)  # private HubAuth API (jupyter_ext.upstream)
        self.hub_auth._persist_url_token_if_set(self)

    def check_body_size(self) -> None:
        """413 (JSON) for a body over ``LensService.max_request_bytes``, before anything reads it."""
        limit = self.lens.max_request_bytes
        length = self.request.headers.get("Content-Length", "")
        declared = int(length[:20]) if length.isdigit() else 0
        if max(declared, len(self.request.body or b"")) > limit:
            raise web.HTTPError(413, f"The request body is larger than {limit} bytes.")

    @property
    def lens(self):
        """The service application object (database, engines, config)."""
        return self.settings["lens"]

    @property
    def identity(self) -> dict | None:
        return self.current_user

    @property
    def is_service(self) -> bool:
        return bool(self.identity) and self.identity.get("kind") == "service"

    @property
    def is_admin(self) -> bool:
        return bool(self.identity) and bool(self.identity.get("admin"))

    def require_identity(self) -> dict:
        if not self.identity:
            raise web.HTTPError(403, "Authentication required: send a hub token with access to the lens service.")
        return self.identity

    def require_admin(self) -> dict:
        who = self.require_identity()
        if not self.is_admin:
            raise web.HTTPError(403, "This needs a hub admin.")
        return who

    def require_trusted_service(self) -> dict:
        who = self.require_identity()
        if not (self.is_service and who.get("name") in self.lens.trusted_services):
            raise web.HTTPError(403, "Only the hub's own services may call this.")
        return who

    def require_user_or_admin(self, name: str) -> dict:
        """The named user themself, an admin, or a trusted hub service."""
        who = self.require_identity()
        if self.is_admin or (self.is_service and who.get("name") in self.lens.trusted_services):
            return who
        if who.get("kind") == "user" and who.get("name") == name:
            return who
        raise web.HTTPError(403, f"You may not see {name!r}'s data.")

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise web.HTTPError(400, "The request body must be JSON.") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        return body

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def write_error(self, status_code, **kwargs):
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and status_code >= 500:
            self.log.error("".join(traceback.format_exception(exc)))
            message = "Internal error in the lens service."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))

    @property
    def log(self):
        return self.settings["lens"].log

    def _request_summary(self) -> str:
        """The request line tornado logs (access log, HTTPError warnings, tracebacks),
        with secrets in the query string (?token=, OAuth's code and state) masked."""
        return f"{self.request.method} {scrub_uri(self.request.uri)} ({self.request.remote_ip})"


class NotFoundHandler(LensHandler):
    """Any path no route matches (``api/shares/alice/..`` arrives as ``api/shares/``): a JSON
    404 like every other refusal, not tornado's HTML page."""

    async def prepare(self):
        raise web.HTTPError(404, "No such lens service route.")


class LensPageHandler(LensHandler):
    """HTML pages: unauthenticated browsers are sent through hub OAuth."""

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        title = web.escape.xhtml_escape(f"{status_code} {self._reason}")
        self.set_header("Content-Type", "text/html")
        self.finish(f"<!doctype html><html><head><title>lens: {title}</title></head><body>"
                    f"<h1>{title}</h1><p>{web.escape.xhtml_escape(message)}</p></body></html>")
