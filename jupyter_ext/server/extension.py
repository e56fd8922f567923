"""The lens server extension, running inside every user server."""

from __future__ import annotations

import asyncio
import os

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Unicode, default

from jupyter_ext.clients.lens import LensClient
from jupyter_ext.clients.outbox import Outbox, ensure_flusher
from jupyter_ext.server.handlers import default_handlers


class LensExtension(ExtensionApp):
    name = "jupyter_ext"
    extension_url = "/lens"
    load_other_extensions = True

    lens_service_url = Unicode(
        config=True, help="URL of the lens hub service (default: $LENS_SERVICE_URL)."
    )

    @default("lens_service_url")
    def _default_lens_service_url(self):
        return os.environ.get("LENS_SERVICE_URL", "")

    outbox_path = Unicode(
        config=True,
        help="SQLite file keeping calls the lens service could not take yet (archive registrations); "
        "retried at start and every outbox_interval seconds. Default: $LENS_OUTBOX_PATH or "
        "~/.local/share/lens/outbox.sqlite.",
    )

    @default("outbox_path")
    def _default_outbox_path(self):
        return os.environ.get("LENS_OUTBOX_PATH") or os.path.expanduser("~/.local/share/lens/outbox.sqlite")

    outbox_interval = Float(
        float(os.environ.get("LENS_OUTBOX_INTERVAL") or 20), config=True,
        help="Seconds between retries of kept calls (default: $LENS_OUTBOX_INTERVAL or 20).",
    )

    guest_recheck_interval = Float(
        5.0, config=True,
        help="Seconds between re-checks, with the hub, of the websockets a guest (a user this server "
        "is shared with) holds open; one whose share was revoked is closed. 0: never re-check.",
    )

    _outbox: Outbox | None = None

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = Outbox(self.outbox_path)
        return self._outbox

    def lens_client(self) -> LensClient:
        """The lens service as this server's user (its own hub token)."""
        return LensClient(self.lens_service_url, os.environ.get("JUPYTERHUB_API_TOKEN", ""))

    def initialize_handlers(self):
        self.handlers.extend(default_handlers())

    async def _start_jupyter_server_extension(self, serverapp):
        """Deliver what an earlier run kept (at start), then retry on a timer; watch guests."""
        self.watch_guests(serverapp)
        if self.lens_service_url:
            try:
                ensure_flusher(self.outbox, self.lens_client(), self.outbox_interval)
            except OSError as exc:  # an unwritable home must not stop the server
                self.log.warning("lens outbox %s unavailable: %s", self.outbox_path, exc)

    def watch_guests(self, serverapp) -> None:
        """A revoked share also ends the guest's open websockets (jupyter_ext/server/guests.py)."""
        from jupyter_ext.server.guests import close_revoked, track_guest_websockets

        owner = os.environ.get("JUPYTERHUB_USER", "")
        hub_auth = getattr(getattr(serverapp, "identity_provider", None), "hub_auth", None)
        if not (owner and hub_auth is not None and self.guest_recheck_interval > 0):
            return  # not under JupyterHub: nobody is a guest
        if track_guest_websockets(owner):
            self._guest_watch = PeriodicCallback(lambda: asyncio.ensure_future(close_revoked(hub_auth)),
                                                 self.guest_recheck_interval * 1000)
            self._guest_watch.start()
