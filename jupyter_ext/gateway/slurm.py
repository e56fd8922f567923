"""HPC mode: dask-gateway's SlurmBackend with lens's limits, budget and user mapping.

Upstream's JobQueueBackend runs every sbatch/scancel as the cluster's user
through ``sudo -nHu USER dask-gateway-jobqueue-launcher`` with an *empty*
environment. lens adds:
- the unix account mapping (hub user NAME -> ``jupyter-NAME``);
- ``user_switch_command``: ``sudo -nHu {user}`` by default (an unprivileged
  gateway with a sudoers rule), or ``runuser -u {user} --`` for a root gateway
  on a machine without sudo;
- ``SLURM_CONF`` passed to sbatch/scancel/squeue, which otherwise only find
  ``/etc/slurm/slurm.conf``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.jobqueue.slurm import SlurmBackend, SlurmClusterConfig
from traitlets import List, Unicode, default

from .backend import LensBackendMixin, cluster_config_trait
from .cluster_config import LensClusterConfigMixin


class LensSlurmClusterConfig(LensClusterConfigMixin, SlurmClusterConfig):
    """SlurmBackend's cluster config with lens's default caps."""


class LensSlurmBackend(LensBackendMixin, SlurmBackend):
    """Dask clusters as Slurm jobs submitted as the user's unix account."""

    cluster_config_class = cluster_config_trait("jupyter_ext.gateway.slurm.LensSlurmClusterConfig")

    user_switch_command = List(
        Unicode(),
        ["sudo", "-nHu", "{user}"],
        help="argv prefix that runs the launcher as {user} (the unix account).",
        config=True,
    )

    slurm_conf = Unicode(
        help="SLURM_CONF for sbatch/scancel/squeue (default: $SLURM_CONF).", config=True
    )

    @default("slurm_conf")
    def _default_slurm_conf(self):
        return os.environ.get("SLURM_CONF", "")

    def unix_name(self, username: str) -> str:
        return self.lens.unix_user(username)

    def check_user(self, username: str) -> None:
        super().check_user(username)
        try:
            pwd.getpwnam(self.unix_name(username))
        except KeyError:
            raise PublicException(
                f"no unix account {self.unix_name(username)!r} for user {username!r}"
            ) from None

    def _slurm_env(self, env: dict) -> dict:
        env = dict(env)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def get_staging_directory(self, cluster):
        unix = self.unix_name(cluster.username)
        staging_dir = cluster.config.staging_directory.format(
            home=pwd.getpwnam(unix).pw_dir, username=unix
        )
        return os.path.join(staging_dir, cluster.name)

    def get_submit_cmd_env_stdin(self, cluster, worker=None):
        cmd, env, script = super().get_submit_cmd_env_stdin(cluster, worker)
        return cmd, self._slurm_env(env), script

    def get_stop_cmd_env(self, job_id):
        cmd, env = super().get_stop_cmd_env(job_id)
        return cmd, self._slurm_env(env)

    def get_status_cmd_env(self, job_ids):
        cmd, env = super().get_status_cmd_env(job_ids)
        return cmd, self._slurm_env(env)

    async def do_as_user(self, user, action, **kwargs):
        """Upstream's do_as_user with the mapped account and a configurable switch."""
        unix = self.unix_name(user)
        cmd = [part.format(user=unix) for part in self.user_switch_command]
        cmd.append(self.dask_gateway_jobqueue_launcher)
        kwargs["action"] = action
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            env={},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await proc.communicate(json.dumps(kwargs).encode("utf8"))
        out = stdout.decode("utf8", "replace")
        err = stderr.decode("utf8", "replace")
        if proc.returncode != 0:
            raise Exception(
                f"Error running {cmd!r}\n  returncode: {proc.returncode}\n"
                f"  stdout: {out}\n  stderr: {err}"
            )
        result = json.loads(out)
        if not result["ok"]:
            raise Exception(result["error"])
        return result["returncode"], result["stdout"], result["stderr"]
