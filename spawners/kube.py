"""KubeProfileSpawner: the same profile catalog, on Kubernetes.

Design (kubespawner 7.1.0):

- The catalog (``profiles.yaml``) is the single source. ``profile_list`` is
  generated from it (``kube_objects.profile_list``); a ``profile_list`` set in
  config (e.g. z2jh's ``singleuser.profileList``) is ignored with a warning,
  and one assigned at run time (a hook, a subclass) raises a TraitError.
- kubespawner's own form, ``options_from_form`` and ``load_user_options``
  are replaced by the shared :class:`ProfileSpawnerMixin` ones, so the form
  shows $/h, groups restrict profiles, and REST and form spawns behave as on
  the local spawner: unknown profile -> 400, forbidden -> 403 with a plain
  message, never a silent fallback. kubespawner's ``_validate_user_options``
  would turn a forbidden profile into a 400 "No such profile" (or allow it),
  so it is not used.
- ``apply_user_options`` (JupyterHub >= 5.3, before the pre-spawn hook) and
  ``load_user_options`` (called by kubespawner's ``_start``) both run the
  same idempotent selection; the first gives the hub its HTTP status early.
- The lifecycle (budget hold and its release on a failed start, metering, the
  user's Dask clusters stopped with the server) is the mixin's; this class only
  turns a profile into kubespawner settings and pods (``kube_objects``).
"""

from __future__ import annotations

import copy

from kubespawner import KubeSpawner
from traitlets import Bool, TraitError, Unicode, default, validate

from jupyter_ext.upstream import check

from . import kube_objects
from .common import ProfileSpawnerMixin
from .profiles import Profile


class KubeProfileSpawner(ProfileSpawnerMixin, KubeSpawner):
    """Spawn the chosen catalog profile as a pod (see module docstring)."""

    @default("start_capacity")
    def _default_start_capacity(self):
        return 0.0  # the scheduler and user placeholders pace pods; no hub-side line

    home_mount_path = Unicode(
        "/home/jovyan", config=True, help="Where the user's home PVC is mounted in every profile's pod."
    )
    shared_data_claim = Unicode(
        "",
        config=True,
        help="Name of an existing PVC with shared data, mounted in every pod. Empty: none.",
    )
    shared_data_mount_path = Unicode(
        "/home/jovyan/shared", config=True, help="Mount path of the shared data PVC."
    )
    shared_data_read_only = Bool(True, config=True, help="Mount the shared data PVC read-only.")
    gpu_type_label = Unicode(
        "lens.io/gpu-type",
        config=True,
        help="Node label that carries a profile's gpu.type; GPU profiles select nodes with it.",
    )
    pin_instance_type = Bool(
        False,
        config=True,
        help="Also select node.kubernetes.io/instance-type for CPU profiles (GPU profiles always do).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._configured_values: dict = {}
        if self.profile_list and not getattr(self.profile_list, "_lens_catalog", False):
            self.log.warning(
                "KubeSpawner.profile_list from config (or a subclass's default) is ignored: "
                "profiles come from %s",
                self.profiles_path,
            )
            self.profile_list = self._default_profile_list()
        self._lens_profile_list_frozen = True

    @validate("profile_list")
    def _refuse_runtime_profile_list(self, proposal):
        """A profile_list assigned after start-up (a hook, a subclass) is refused loudly:
        profiles, prices and group rules come from the catalog only."""
        value = proposal.value
        if getattr(self, "_lens_profile_list_frozen", False) and not getattr(value, "_lens_catalog", False):
            raise TraitError(
                f"KubeProfileSpawner.profile_list cannot be assigned at run time: profiles come from "
                f"the catalog {self.profiles_path} (add the profile there, with its price and groups)."
            )
        return value

    # -- catalog -> kubespawner ---------------------------------------------
    @property
    def pod_layout(self) -> kube_objects.PodLayout:
        return kube_objects.PodLayout(
            home_mount_path=self.home_mount_path,
            shared_data_claim=self.shared_data_claim,
            shared_data_mount_path=self.shared_data_mount_path,
            shared_data_read_only=self.shared_data_read_only,
            gpu_type_label=self.gpu_type_label,
            pin_instance_type=self.pin_instance_type,
        )

    @default("profile_list")
    def _default_profile_list(self):
        def from_catalog(spawner):
            return kube_objects.profile_list(spawner.catalog, spawner.pod_layout)

        from_catalog._lens_catalog = True
        return from_catalog

    def profile_unavailability(self) -> dict[str, str]:
        # `requires` names local executables; images provide them on Kubernetes.
        return {}

    def apply_profile(self, profile: Profile) -> None:
        """Apply one profile's overrides on top of the configured values.

        The spawner object outlives a server, so what an earlier profile set
        (a GPU node selector, say) is first put back to the configured value.
        """
        overrides = kube_objects.profile_overrides(profile, self.pod_layout, self.lens_env())
        # then each chosen profile option's override, as kubespawner's _load_profile does
        steps = [overrides, *(override for _, _, override in self.profile_choices)]
        for name, value in self._configured_values.items():
            setattr(self, name, copy.deepcopy(value))
        for step in steps:
            for name in step:
                self._configured_values.setdefault(name, copy.deepcopy(getattr(self, name)))
        check("kubespawner.apply_overrides", self.log)  # a private upstream method
        for step in steps:
            self._apply_overrides(copy.deepcopy(step))

    async def load_user_options(self):
        """kubespawner's hook, called from ``_start``: select through the catalog."""
        await self.apply_profile_options(self.user_options or {})
