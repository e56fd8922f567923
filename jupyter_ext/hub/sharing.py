"""Sharing a server (JupyterHub's ``shares`` API): the scopes lens grants for it.

One place for the local hub (``hub_config/jupyterhub_config.py``), Kubernetes
(``helm/lens/values.yaml``, checked by tests/k8s/test_helm.py) and the tests.
"""

from __future__ import annotations

# Users list and revoke the shares of their own servers with the hub's API directly.
USER_SHARING_SCOPES = ("shares!user",)

# The lens service shares a server by name for its owner (jupyter_ext/service/share_routes.py):
# JupyterHub asks whoever shares by name for read:users:name / read:groups:name, which
# lens does not give every user (they would reveal who and which groups exist), and
# read:*:shares to list what is shared with a user and their groups.
SERVICE_SHARING_SCOPES = ("shares", "read:users:name", "read:groups:name", "read:users:shares",
                          "read:groups:shares")
