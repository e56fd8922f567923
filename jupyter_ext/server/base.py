"""The base of every REST handler of the server extension (under /lens/api/)."""

from __future__ import annotations

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from jupyter_ext.clients.lens import LensClient

AUTH_RESOURCE = "lens"


class LensAPIHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def lens_service_url(self) -> str:
        return self.extensionapp.lens_service_url

    def lens_client(self) -> LensClient:
        """The lens service, called with this server's own hub token (as its user)."""
        return self.extensionapp.lens_client()
