"""The spawn refusal users see.

JupyterHub 6.1's form handler shows ``format_exception(exc)``, which reads
``jupyterhub_message`` and otherwise falls back to ``str(exc)``; a plain
``SpawnException`` has no such attribute, so the page would say
"403 SpawnException(reason=budget): ...". This subclass gives the form page the
user-facing message (and HTML, if any), while logs and metrics keep the
upstream fields.
"""

from __future__ import annotations

from html import escape

from jupyterhub.spawner import SpawnException as _UpstreamSpawnException

from jupyter_ext.upstream import check

# Written for JupyterHub 6.1's form page (jupyter_ext.upstream.PATCHES, with the
# upstream links); harmless elsewhere, so only a warning on another version.
check("jupyterhub.jupyterhub_message")


class SpawnException(_UpstreamSpawnException):
    @property
    def jupyterhub_message(self) -> str:
        return self.message

    @property
    def jupyterhub_html_message(self) -> str:
        return self.message_html or escape(self.message)
