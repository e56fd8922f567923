"""The one Kubernetes call lens makes itself: read and set a StatefulSet's
replica count through its ``scale`` subresource (z2jh's user placeholders).

Thin on purpose: the body comes from ``jupyter_ext.workshop.placeholders.scale_patch``
and is sent as a JSON merge patch. The chart's Role lets the lens service do
exactly ``get`` and ``patch`` on ``statefulsets/scale`` of that one StatefulSet
(helm/lens/templates/prewarm-rbac.yaml). kubernetes_asyncio comes with
kubespawner and dask-gateway-server[kubernetes] in the hub image.
"""

from __future__ import annotations

from jupyter_ext.workshop.placeholders import MERGE_PATCH, scale_patch


class StatefulSetScale:
    def __init__(self, name: str, namespace: str, api_client=None):
        self.name, self.namespace = name, namespace
        self._api_client = api_client  # None: in-cluster config, loaded on first use

    async def _api(self):
        from kubernetes_asyncio import client, config

        if self._api_client is None:
            config.load_incluster_config()  # the pod's service account token
            self._api_client = client.ApiClient()
        return client.AppsV1Api(self._api_client)

    async def replicas(self) -> int:
        scale = await (await self._api()).read_namespaced_stateful_set_scale(self.name, self.namespace)
        return int(scale.spec.replicas or 0)

    async def scale(self, replicas: int) -> int:
        api = await self._api()
        scale = await api.patch_namespaced_stateful_set_scale(
            self.name, self.namespace, scale_patch(replicas), _content_type=MERGE_PATCH
        )
        return int(scale.spec.replicas or 0)

    async def close(self) -> None:
        if self._api_client is not None:
            await self._api_client.close()
