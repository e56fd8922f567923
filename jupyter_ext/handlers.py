"""REST handlers of the server extension (under /lens/api/)."""

from __future__ import annotations

import json
import os

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from . import __version__

AUTH_RESOURCE = "lens"


class LensAPIHandler(ExtensionHandlerMixin, APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def lens_service_url(self) -> str:
        return self.extensionapp.lens_service_url


class StatusHandler(LensAPIHandler):
    @web.authenticated
    @authorized
    def get(self):
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "service_url": self.lens_service_url,
                    "profile": os.environ.get("LENS_PROFILE", ""),
                    "hourly_cost": float(os.environ.get("LENS_HOURLY_COST", "0") or 0),
                }
            )
        )


def default_handlers() -> list[tuple]:
    return [(r"/lens/api/status", StatusHandler)]
