"""The lens server extension, running inside every user server."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode, default

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

    def initialize_handlers(self):
        self.handlers.extend(default_handlers())
