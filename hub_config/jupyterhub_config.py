# JupyterHub configuration for lens, local (`make hub`) and Kubernetes (helm/).
#
# Everything deployment-specific comes from lens.yaml ($LENS_CONFIG) and the
# LENS_* environment (see jupyter_ext/hub/settings.py); the profile catalog is
# hub_config/profiles.yaml ($LENS_PROFILES).
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from jupyter_ext.hub.settings import SettingsError, load_settings
from jupyter_ext.hub.state import ensure_state
from jupyter_ext.paths import config_file, state_dir
from spawners.profiles import CatalogError, load_catalog

c = get_config()  # noqa: F821
log = logging.getLogger("lens.config")
HERE = Path(__file__).resolve().parent
PY = sys.executable

try:
    settings = load_settings()
    catalog = load_catalog(os.environ.setdefault("LENS_PROFILES", str(config_file("profiles.yaml"))))
except (SettingsError, CatalogError) as exc:
    # A bad catalog or settings file stops the hub with a message naming the culprit.
    sys.exit(f"lens: cannot start the hub: {exc}")

deployment = os.environ.get("LENS_DEPLOYMENT", "local")
state = ensure_state(os.environ.setdefault("LENS_STATE_DIR", str(state_dir())))
ports = settings["ports"]
bind = urlparse(settings["bind_url"])
public_host = f"{bind.scheme}://{bind.hostname}:{bind.port or 80}"

# --- hub, proxy, state (on Kubernetes, z2jh's chart owns all of these) ----------
c.JupyterHub.cleanup_servers = False  # a hub restart leaves user servers running
if deployment == "local":
    c.JupyterHub.bind_url = settings["bind_url"]
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{ports['hub']}"
    c.JupyterHub.db_url = state.hub_db_url
    c.JupyterHub.cookie_secret_file = str(state.cookie_secret_file)
    c.ConfigurableHTTPProxy.pid_file = str(state.proxy_pid_file)
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{ports['proxy_api']}"
    c.ConfigurableHTTPProxy.auth_token = state.token("proxy-auth")
    if os.environ.get("LENS_CHP"):
        c.ConfigurableHTTPProxy.command = [os.environ["LENS_CHP"]]
c.JupyterHub.concurrent_spawn_limit = settings["spawner"]["concurrent_spawn_limit"]
c.JupyterHub.template_vars = {"lens_profiles": [p.slug for p in catalog.profiles]}

# --- authentication ------------------------------------------------------------
auth = settings["auth"]
if auth["type"] == "oidc":
    oidc = auth["oidc"]
    c.JupyterHub.authenticator_class = "jupyter_ext.hub.oidc.LensOAuthenticator"  # GenericOAuthenticator + name rules
    c.GenericOAuthenticator.client_id = oidc["client_id"]
    c.GenericOAuthenticator.client_secret = oidc.get("client_secret", "")
    c.GenericOAuthenticator.authorize_url = oidc["authorize_url"]
    c.GenericOAuthenticator.token_url = oidc["token_url"]
    c.GenericOAuthenticator.userdata_url = oidc["userdata_url"]
    c.GenericOAuthenticator.oauth_callback_url = oidc["oauth_callback_url"]
    scope = oidc.get("scope", ["openid", "profile", "email"])
    c.GenericOAuthenticator.scope = scope.split() if isinstance(scope, str) else scope
    c.GenericOAuthenticator.username_claim = oidc.get("username_claim", "sub")
    if oidc.get("claim_groups_key"):
        c.GenericOAuthenticator.claim_groups_key = oidc["claim_groups_key"]
        c.GenericOAuthenticator.manage_groups = True
    if oidc.get("allowed_groups"):
        c.GenericOAuthenticator.allowed_groups = set(oidc["allowed_groups"])
    else:
        c.GenericOAuthenticator.allow_all = True
    if oidc.get("admin_groups"):
        c.GenericOAuthenticator.admin_groups = set(oidc["admin_groups"])
    c.Authenticator.admin_users = {settings["admin_user"]}
else:
    c.JupyterHub.authenticator_class = "lens-password"
    c.LensPasswordAuthenticator.db_url = state.lens_db_url

# --- spawner -------------------------------------------------------------------
spawn = settings["spawner"]
c.Spawner.start_timeout = spawn["start_timeout"]
c.Spawner.http_timeout = spawn["http_timeout"]
# The budget gate is a hub -> lens service -> hub round trip inside every spawn. Under a
# login/spawn storm on 2 cores the hub's event loop stalls for seconds at a time, so size
# its deadline like the other spawn timeouts (5 s failed ~1 in 5 of 50 simultaneous spawns).
c.ProfileSpawnerMixin.budget_gate_timeout = float(spawn.get("budget_gate_timeout", 30))
c.Spawner.default_url = "/lab"
c.ProfileSpawnerMixin.lens_service_url = f"http://127.0.0.1:{ports['lens_service']}/services/lens/"
c.ProfileSpawnerMixin.lens_public_service_url = f"{public_host}/services/lens/"
c.ProfileSpawnerMixin.lens_api_token = state.token("lens-gate")
if deployment == "local":
    c.JupyterHub.spawner_class = "lens-local"
    if os.geteuid() != 0:
        log.warning(
            "lens dev mode: not running as root, so every user's server runs as %s "
            "with a separate home under %s/homes. Run as root for one unix account per user.",
            os.environ.get("USER", "this account"),
            state.root,
        )
    # PYTHONPATH: servers run the same lens code as the hub and its services (a checkout on it);
    # JUPYTER_PATH and JUPYTER_CONFIG_PATH likewise for that checkout's JupyterLab extension
    # build (labextensions/) and its jupyter-config (which server extensions are on)
    c.Spawner.env_keep = ["PATH", "PYTHONPATH", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "LANG", "LC_ALL", "LENS_CODE_SERVER_PREFIX", "AWS_ENDPOINT_URL",
                          "LENS_OUTBOX_INTERVAL"]
else:
    from jupyter_ext.hub.k8s_config import configure_k8s

    configure_k8s(c, settings)

if spawn.get("start_capacity", "auto") != "auto":  # "auto": 6 CPU-seconds of starts per core at once
    c.ProfileSpawnerMixin.start_capacity = float(spawn["start_capacity"])
if "budget_gate" in spawn:  # false: no budget check at spawn (benchmarks; hubs without budgets)
    c.ProfileSpawnerMixin.budget_gate = bool(spawn["budget_gate"])
if "gpu_count" in spawn:  # GPUs the local machine offers, when /dev/nvidia* does not show them
    c.ProfileSpawnerMixin.gpu_count = int(spawn["gpu_count"])

# How fresh the activity the idle culler reads is: servers report theirs (kernels, terminals,
# API calls, proxied apps such as the desktop's VNC websocket) and the hub reads the proxy's
# routes every activity_interval seconds (JupyterHub's default, 300, unless lens.yaml says).
_activity_interval = int(settings["culler"].get("activity_interval", 300))
c.JupyterHub.last_activity_interval = _activity_interval
c.Spawner.environment.update({"JUPYTERHUB_ACTIVITY_INTERVAL": str(_activity_interval)})

# Budget alerts (50/80/100 %) of the user and their groups, on every hub page, next to
# the operator's own announcement. Read from the lens service, cached (jupyter_ext/hub/banner.py).
from jupyter_ext.hub.banner import BudgetBanner  # noqa: E402

_lens = {**c.ProfileSpawnerMixin, **c.KubeProfileSpawner}  # k8s_config sets the latter
c.JupyterHub.template_vars["announcement"] = BudgetBanner(
    str(_lens.get("lens_service_url", "")), str(_lens.get("lens_api_token", "")), base=settings["announcement"]
)

# A server shared with a group opens for its members' tokens (JupyterHub 6.1 gives tokens
# only their owner's user shares; jupyter_ext/hub/group_shares.py, local and Kubernetes).
from jupyter_ext.hub.group_shares import install as install_group_share_tokens  # noqa: E402

install_group_share_tokens()

# Services and roles. On Kubernetes they are declared in helm/lens/values.yaml
# (hub.services, hub.loadRoles), z2jh generates their tokens, and configure_k8s
# gives them in-cluster URLs; assigning them here would drop z2jh's own.
if deployment == "local":
    # --- managed services ------------------------------------------------------------
    service_env = {
        "LENS_STATE_DIR": str(state.root),
        "LENS_DB_URL": state.lens_db_url,
        "LENS_PROFILES": os.environ["LENS_PROFILES"],
        "PATH": os.environ.get("PATH", ""),
        "LENS_WORKSHOP_EXPIRY_EVERY": os.environ.get("LENS_WORKSHOP_EXPIRY_EVERY", "30"),
        # backends and AWS endpoints the operator configured (README "Backends")
        **{
            k: v
            for k, v in os.environ.items()
            if k in ("LENS_SERVICE_CONFIG", "SLURM_CONF", "LENS_ATOM_APPS", "LENS_PRICES_FILE")
            or k.startswith("AWS_")
        },
    }
    culler = settings["culler"]
    c.JupyterHub.services = [
        {
            "name": "lens",
            "display": True,
            "url": f"http://127.0.0.1:{ports['lens_service']}",
            "command": [PY, "-m", "jupyter_ext.service"],
            "api_token": state.token("lens-service"),
            "oauth_no_confirm": True,
            "environment": service_env,
        },
        {"name": "lens-gate", "api_token": state.token("lens-gate"), "display": False},
        # `lens workshop` (CLI) acts on the hub with this token from state/secrets.
        {"name": "lens-admin", "api_token": state.token("lens-admin"), "display": False},
        {
            "name": "idle-culler",
            "command": [
                PY, "-m", "jupyterhub_idle_culler",
                f"--config={config_file('idle_culler_config.py')}",
                f"--timeout={culler['default_timeout']}",
                f"--cull-every={culler['every']}",
            ],
            "api_token": state.token("idle-culler"),
            "environment": service_env,
        },
    ]
    gateway_config = config_file("dask_gateway_config.py")
    if gateway_config.exists():
        c.ProfileSpawnerMixin.dask_gateway = True
        c.ProfileSpawnerMixin.dask_gateway_token = state.token("dask-gateway")
        c.ProfileSpawnerMixin.hub_public_url = public_host
        service_env["LENS_GATEWAY_TOKEN"] = state.token("dask-gateway")  # lens meters clusters
        service_env["LENS_GATEWAY_PORT"] = str(ports["gateway"])
        # The dashboards go through the lens service, which lets only a cluster's owner in
        # (jupyter_ext/service/dashboard_routes.py); the rest of /services/dask-gateway/ goes
        # straight to the gateway's proxy, whose API authenticates with the hub itself.
        dashboards = "/services/dask-gateway/clusters/"
        service_env["LENS_DASK_DASHBOARDS"] = dashboards
        c.Proxy.extra_routes = {dashboards: f"http://127.0.0.1:{ports['lens_service']}"}
        c.JupyterHub.services.append(
            {
                "name": "dask-gateway",
                "url": f"http://127.0.0.1:{ports['gateway']}",
                "command": [PY, "-m", "dask_gateway_server", "-f", str(gateway_config)],
                "api_token": state.token("dask-gateway"),
                "oauth_no_confirm": True,
                "display": False,
                "environment": {
                    **service_env,
                    "LENS_GATEWAY_PORT": str(ports["gateway"]),
                    "LENS_GATEWAY_PROXY_PORT": str(ports["gateway_proxy"]),
                    "LENS_SERVICE_URL": f"http://127.0.0.1:{ports['lens_service']}/services/lens/",
                },
            }
        )

    # --- roles: servers may call lens (and the gateway); services get minimal rights ---
    service_names = {svc["name"] for svc in c.JupyterHub.services}
    access = [f"access:services!service={name}" for name in ("lens", "dask-gateway") if name in service_names]
    from jupyter_ext.hub.sharing import SERVICE_SHARING_SCOPES, USER_SHARING_SCOPES

    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", *USER_SHARING_SCOPES, *access]},
        {"name": "server", "scopes": ["users:activity!user", "access:servers!server", *access]},
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        },
        {
            "name": "lens-service",
            "scopes": ["list:users", "read:users", "read:groups", "read:servers", "admin:auth_state",
                       "delete:servers",  # delete:servers: the workshop expiry task stops expired seats
                       *SERVICE_SHARING_SCOPES],  # a user shares their server by name through lens
            "services": ["lens"],
        },
        {
            "name": "lens-admin",
            # shares: `lens workshop share` shares an instructor's server with the workshop group
            "scopes": ["admin:users", "admin:groups", "admin:servers", "tokens", "list:users", "read:roles:users",
                       "shares"],
            "services": ["lens-admin"],
        },
        {"name": "lens-gate", "scopes": ["access:services!service=lens"], "services": ["lens-gate"]},
    ]
    if "dask-gateway" in service_names:
        c.JupyterHub.load_roles.append(
            {
                "name": "dask-gateway",
                "scopes": ["access:services!service=lens", "read:users:name"],
                "services": ["dask-gateway"],
            }
        )

    # Workshops: one instructor role per workshop, scoped to its group, read from the lens DB
    # (JupyterHub has no REST API for roles, so `lens workshop create` asks for a restart).
    from jupyter_ext.workshop.roles import roles_from_db

    c.JupyterHub.load_roles.extend(roles_from_db(state.lens_db_url))
