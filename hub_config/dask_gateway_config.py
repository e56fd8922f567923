# dask-gateway-server configuration for lens.
#
# Run by the hub as the managed service "dask-gateway":
#     dask-gateway-server -f hub_config/dask_gateway_config.py
# The hub provides JUPYTERHUB_API_TOKEN, JUPYTERHUB_API_URL,
# JUPYTERHUB_SERVICE_PREFIX, LENS_STATE_DIR, LENS_SERVICE_URL,
# LENS_GATEWAY_PORT (public HTTP, default 8010; the hub's proxy routes
# /services/dask-gateway to it) and LENS_GATEWAY_PROXY_PORT (scheduler
# TLS proxy, default 8786).
#
# Choices through the environment:
#   LENS_GATEWAY_BACKEND  local (default) | slurm | kubernetes
#   LENS_GATEWAY_AUTH     jupyterhub (default) | simple (standalone development only)
# Everything lens-specific is c.GatewaySettings.<name> (jupyter_ext/gateway/settings.py);
# per-cluster limits and defaults are dask-gateway's own c.ClusterConfig.<name> (lens's
# per-user limits only lower them; docs/upstream.md). Override any of it in an extra
# file named by LENS_GATEWAY_EXTRA_CONFIG.
# See docs/dask.md.
import os
import shutil
import sys

from jupyter_ext.gateway.options import make_options
from jupyter_ext.gateway.settings import GatewaySettings

c = get_config()  # noqa: F821 - provided by traitlets when loading this file

env = os.environ.get
state_dir = os.path.abspath(env("LENS_STATE_DIR", "state"))
backend = env("LENS_GATEWAY_BACKEND", "local")
is_root = os.geteuid() == 0
bindir = os.path.dirname(sys.executable)
dask_exe = os.path.join(bindir, "dask")

# --- addresses: public HTTP behind the hub proxy, TLS proxy for schedulers ----------
prefix = (env("JUPYTERHUB_SERVICE_PREFIX") or "/services/dask-gateway/").rstrip("/")
c.DaskGateway.address = "127.0.0.1:0"  # private API (schedulers' heartbeats)
c.Proxy.address = f"127.0.0.1:{int(env('LENS_GATEWAY_PORT', '8010'))}"
c.Proxy.tcp_address = f"127.0.0.1:{int(env('LENS_GATEWAY_PROXY_PORT', '8786'))}"
c.Proxy.prefix = prefix
c.DaskGateway.log_level = env("LENS_GATEWAY_LOG_LEVEL", "INFO")

# --- auth: JupyterHub tokens that carry access:services!service=dask-gateway -------
if env("LENS_GATEWAY_AUTH", "jupyterhub") == "simple":
    c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
    if env("LENS_GATEWAY_PASSWORD"):
        c.SimpleAuthenticator.password = env("LENS_GATEWAY_PASSWORD")
else:
    c.DaskGateway.authenticator_class = "jupyter_ext.gateway.auth.LensJupyterHubAuthenticator"
    c.JupyterHubAuthenticator.jupyterhub_service_name = "dask-gateway"
    c.JupyterHubAuthenticator.use_service_access_scopes = True

# --- backend ---------------------------------------------------------------------
# distributed 2026.8 has no dask-scheduler / dask-worker executables.
c.ClusterConfig.scheduler_cmd = [dask_exe, "scheduler"]
c.ClusterConfig.worker_cmd = [dask_exe, "worker"]
c.ClusterConfig.idle_timeout = 30 * 60.0  # replaced by the user's idle_timeout option
c.DBBackendBase.cluster_heartbeat_period = 3
c.DBBackendBase.db_cleanup_period = 600
c.DBBackendBase.db_cluster_max_age = 24 * 3600

if backend == "local":
    if is_root:
        c.DaskGateway.backend_class = "jupyter_ext.gateway.backend.LensLocalBackend"
    else:
        c.DaskGateway.backend_class = "jupyter_ext.gateway.backend.LensUnsafeLocalBackend"
    clusters_dir = os.path.join(state_dir, "dask-clusters")
    os.makedirs(clusters_dir, mode=0o711, exist_ok=True)
    c.LocalBackend.clusters_directory = clusters_dir
    c.LocalBackend.inherited_environment = ["PATH", "LANG", "LC_ALL", "VIRTUAL_ENV"]
elif backend == "slurm":
    c.DaskGateway.backend_class = "jupyter_ext.gateway.slurm.LensSlurmBackend"
    c.SlurmClusterConfig.partition = env("LENS_SLURM_PARTITION", "")
    c.SlurmClusterConfig.staging_directory = env(
        "LENS_SLURM_STAGING", "{home}/.dask-gateway/"
    )
    c.JobQueueBackend.dask_gateway_jobqueue_launcher = os.path.join(
        bindir, "dask-gateway-jobqueue-launcher"
    )
    if is_root and not shutil.which("sudo"):
        # A root gateway switches users with runuser (util-linux) instead of sudo.
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        c.LensSlurmBackend.user_switch_command = [runuser, "-u", "{user}", "--"]
elif backend == "kubernetes":
    # KubeBackend with lens's limits, budget check, options and heartbeat-based metering (docs/dask.md)
    c.DaskGateway.backend_class = "jupyter_ext.gateway.kube.LensKubeBackend"
    c.GatewaySettings.kubernetes = True
else:
    raise ValueError(f"LENS_GATEWAY_BACKEND must be one of local, slurm, kubernetes; got {backend!r}")

# --- options (worker cores/memory, idle timeout; image and GPUs on k8s) ----------------
extra = env("LENS_GATEWAY_EXTRA_CONFIG")
if extra:
    load_subconfig(extra)  # noqa: F821 - provided by traitlets


def _cluster_options(user):
    # Built per request from the loaded settings, so c.GatewaySettings applies.
    return make_options(GatewaySettings(config=c))


c.Backend.cluster_options = _cluster_options
