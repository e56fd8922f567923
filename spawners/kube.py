"""KubeProfileSpawner: the same catalog on Kubernetes (see issue 7)."""

from kubespawner import KubeSpawner

from .common import ProfileSpawnerMixin


class KubeProfileSpawner(ProfileSpawnerMixin, KubeSpawner):
    """Placeholder until the Kubernetes work lands."""
