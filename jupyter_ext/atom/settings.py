"""``AtomSettings``: build the JobManager and its backends from traitlets config, e.g.::

    c.AtomSettings.backends = ["local", "slurm"]
    c.AtomSettings.default_backend = "slurm"
    c.LocalBackend.state_dir = "/var/lib/lens/atom-local"
    c.SlurmBackend.state_dir = "/shared/lens/atom-slurm"
"""

from __future__ import annotations

from traitlets import Float, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from .backends.factory import make_backend
from .catalog import load_catalog
from .manager import MAX_ACTIVE_TASKS, JobManager
from .spec import MAX_ARRAY, MAX_SPEC_BYTES


class AtomSettings(LoggingConfigurable):
    backends = List(Unicode(), ["local"],
                    help="Backends to enable, from: local, slurm, batch.").tag(config=True)
    default_backend = Unicode("", help="Backend for specs that name none ('' = the first).").tag(
        config=True)
    catalog_path = Unicode("", help="App catalog YAML ('' = hub_config/atom_apps.yaml or "
                           "$LENS_ATOM_APPS).").tag(config=True)
    refresh_interval = Float(5.0, help="Seconds between status refreshes of active jobs.").tag(
        config=True)

    max_spec_bytes = Integer(
        MAX_SPEC_BYTES, min=1024,
        help="Largest job spec accepted, in bytes of compact JSON; larger specs get 400. "
        "Records are rewritten on every status refresh, so keep this small.").tag(config=True)
    max_array_size = Integer(
        MAX_ARRAY, min=1, max=MAX_ARRAY,
        help=f"Most array members one job may have (at most {MAX_ARRAY}); more gets 400.").tag(
        config=True)
    max_active_tasks = Integer(
        MAX_ACTIVE_TASKS, min=1,
        help="Most array members (a plain job counts one) one user may have held, pending or "
        "running at once; a submission past it gets 400.").tag(config=True)

    def build_manager(self, engine, ledger, prices=None) -> JobManager:
        """``prices``: the process's ``PriceCatalog`` (the service gives its own)."""
        backends = {name: make_backend(name, config=self.config, log=self.log)
                    for name in self.backends}
        return JobManager(engine, backends, ledger, catalog=load_catalog(self.catalog_path or None),
                          prices=prices, default_backend=self.default_backend or None,
                          log=self.log, max_spec_bytes=self.max_spec_bytes,
                          max_array_size=self.max_array_size,
                          max_active_tasks=self.max_active_tasks)
