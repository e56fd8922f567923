"""Sharing a server (JupyterHub's ``shares`` API): the scopes lens grants for it.

One list for the local hub (``hub_config/jupyterhub_config.py``), Kubernetes
(``k8s_config.SERVER_TOKEN_SCOPES`` and ``helm/lens/values.yaml``) and the tests.
"""

from __future__ import annotations

# A user shares and revokes their own servers (``shares!user`` also holds the
# ``access:servers`` of those servers, which a share grants), and names the user or
# group to share with: the hub refuses a share by name without ``read:*:name``.
# The same scopes go to the server's own token (intersected with its owner's), so
# JupyterLab (the lens panel, `lens share` in a terminal) can share the server it runs in.
SHARING_SCOPES = ("shares!user", "read:users:name", "read:groups:name")
