"""LocalProfileSpawner: profiles on one machine.

- As root, each hub user runs as their own unix account (``jupyter-NAME``,
  created on first spawn, home mode 0700), inside a memory cgroup sized from
  the profile when the kernel allows it.
- Not as root (dev mode), every server runs as the hub's account, with one
  home directory per user under the state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import signal
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Float, Integer, Unicode, default

from jupyter_ext import cgroups

from .common import ProfileSpawnerMixin, apply_local_options
from .desktop_apps import local_catalog
from .errors import SpawnException
from .profiles import Catalog, Profile

UNIX_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def login_defs_number(key: str, fallback: int, path: str = "/etc/login.defs") -> int:
    """A numeric setting of login.defs (UID_MIN, UID_MAX), or ``fallback`` if unset."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == key and parts[1].isdigit():
                    return int(parts[1])
    except OSError:
        pass
    return fallback


def login_defs_uid_min(path: str = "/etc/login.defs") -> int:
    """UID_MIN of login.defs: accounts below it are system accounts (1000 if unset)."""
    return login_defs_number("UID_MIN", 1000, path)


def login_defs_uid_max(path: str = "/etc/login.defs") -> int:
    """UID_MAX of login.defs: accounts above it (nobody, 65534) are not users (60000 if unset)."""
    return login_defs_number("UID_MAX", 60000, path)


def is_user_uid(uid: int, min_uid: int, max_uid: int) -> bool:
    """True for a regular user's uid; False for system accounts (root, daemon, nobody)."""
    return min_uid <= uid <= max_uid


def process_group_alive(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def end_leftovers(pgid: int | None, cgroup: Path | None, grace: float = 5.0) -> bool:
    """End what a stopped server left running: its process group (the server is a
    session leader, so a desktop's vncserver, Xvnc and XFCE session are in it), and as
    root whatever else is in its memory cgroup (daemons that made a session of their
    own). jupyter-server-proxy does not stop the programs it supervises when the server
    is stopped from outside. SIGTERM, then SIGKILL after ``grace`` seconds; True when
    nothing is left."""

    def alive() -> bool:
        if pgid and process_group_alive(pgid):
            return True
        return cgroup is not None and not cgroups.cgroup_empty(cgroup)

    def send(sig: int) -> None:
        if pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        if cgroup is not None:
            cgroups.signal_cgroup(cgroup, sig)

    loop = asyncio.get_running_loop()
    # SIGTERM once, then SIGKILL again and again: a process forking while it is killed
    # (dbus-launch starting its babysitter) can have a child the previous round missed.
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        deadline, sent = loop.time() + wait, False
        while True:
            if not alive():
                return True
            if loop.time() >= deadline:
                break
            if not sent or sig == signal.SIGKILL:
                send(sig)
                sent = True
            await asyncio.sleep(0.1)
    return not alive()


def running_as_root() -> bool:
    return os.geteuid() == 0


class LocalProfileSpawner(ProfileSpawnerMixin, LocalProcessSpawner):
    """Spawn the chosen profile as a local process (see module docstring)."""

    unix_name_template = Unicode(
        "jupyter-{username}",
        config=True,
        help="Unix account for a hub user when running as root. The prefix keeps hub names "
        "like 'root' or 'daemon' from ever mapping to system accounts.",
    )
    min_uid = Integer(
        config=True,
        help="Lowest uid a user's unix account may have (default: UID_MIN of /etc/login.defs, else 1000). "
        "A hub user whose mapped name is an existing account below it (a system account: root, daemon, "
        "a service's own account) is refused instead of running as that account.",
    )

    @default("min_uid")
    def _default_min_uid(self):
        return login_defs_uid_min()

    max_uid = Integer(
        config=True,
        help="Highest uid a user's unix account may have (default: UID_MAX of /etc/login.defs, else 60000). "
        "Accounts above it (nobody, 65534) are refused like those below min_uid.",
    )

    @default("max_uid")
    def _default_max_uid(self):
        return login_defs_uid_max()

    home_base = Unicode("/home", config=True, help="Parent of per-user homes when running as root.")
    create_system_users = Bool(
        True,
        config=True,
        help="As root, create the unix account on first spawn. Disable to require pre-made accounts.",
    )
    dev_home_root = Unicode(
        config=True,
        help="Dev mode (not root): parent directory of per-user homes. Default: $LENS_STATE_DIR/homes.",
    )

    @default("dev_home_root")
    def _default_dev_home_root(self):
        return os.path.join(os.environ.get("LENS_STATE_DIR", "state"), "homes")

    user_umask = Integer(
        0o022,
        config=True,
        help="umask of user servers and what they start (the hub's own is 077, for its private state).",
    )

    enforce_memory_limit = Bool(
        True,
        config=True,
        help="Put each server in a memory cgroup limited to its profile's memory limit (root only).",
    )

    @default("cmd")
    def _default_cmd(self):
        # jupyterhub-singleuser with lens's start-time fixes (jupyter_ext/server/singleuser.py)
        return [os.path.join(sys.prefix, "bin", "lens-singleuser")]

    _cgroup: Path | None = None
    _server_pgid: int | None = None  # the server's process group (it is a session leader)

    # -- identity ----------------------------------------------------------
    @property
    def per_user_accounts(self) -> bool:
        return running_as_root()

    @property
    def unix_name(self) -> str:
        if not self.per_user_accounts:
            return pwd.getpwuid(os.geteuid()).pw_name
        name = self.unix_name_template.format(username=self.user.name)
        if not UNIX_NAME_RE.match(name):
            raise SpawnException(
                f"The user name {self.user.name!r} cannot be mapped to a unix account "
                "(lowercase letters, digits, '-' and '_', at most 32 characters in all).",
                reason="username",
                status_code=400,
            )
        return name

    @property
    def home(self) -> str:
        if self.per_user_accounts:
            return os.path.join(self.home_base, self.unix_name)
        return os.path.abspath(os.path.join(self.dev_home_root, self.user.name))

    async def ensure_account(self) -> None:
        """Create the unix account and a private home (0700) if needed."""
        if not self.per_user_accounts:
            os.makedirs(self.home, mode=0o700, exist_ok=True)
            return
        name = self.unix_name
        try:
            pwd.getpwnam(name)
        except KeyError:
            if not self.create_system_users:
                raise SpawnException(
                    f"No unix account {name!r} exists for you; ask an admin.", reason="account"
                ) from None
            argv = [
                "useradd", "--create-home", "--home-dir", self.home, "--shell", "/bin/bash",
                "--user-group", "--comment", f"lens user {self.user.name}", name,
            ]
            for attempt in range(20):
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
                )
                _, err = await proc.communicate()
                # Concurrent first spawns race for /etc/passwd's lock: wait and retry.
                if b"cannot lock" not in err:
                    break
                await asyncio.sleep(0.1 + 0.1 * attempt)
            if proc.returncode not in (0, 9):  # 9: created concurrently
                raise SpawnException(
                    "Your account could not be created; an admin has been told.",
                    reason="account",
                    status_code=500,
                    log_message=f"useradd {name} failed: {err.decode(errors='replace')}",
                ) from None
            self.log.info("Created unix account %s for hub user %s", name, self.user.name)
        entry = pwd.getpwnam(name)
        if not is_user_uid(entry.pw_uid, self.min_uid, self.max_uid):
            # Never adopt a system account: a hub name (or a unix_name_template) that
            # lands on one would run the user's server as root, daemon or a service.
            raise SpawnException(
                f"The user name {self.user.name!r} maps to the system account {name!r}, "
                "which cannot run user servers; ask an admin.",
                reason="account",
                status_code=403,
                log_message=f"refused to adopt system account {name} "
                f"(uid {entry.pw_uid} outside {self.min_uid}..{self.max_uid})",
            )
        os.makedirs(entry.pw_dir, exist_ok=True)
        os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(entry.pw_dir, 0o700)

    def scratch_owner(self) -> tuple[int, int] | None:
        if not self.per_user_accounts:
            return None
        entry = pwd.getpwnam(self.unix_name)
        return entry.pw_uid, entry.pw_gid

    # -- profile -------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        # the desktop profile says which of its applications this machine has
        return local_catalog(super().catalog)

    def apply_profile(self, profile: Profile) -> None:
        self.default_url = profile.default_url
        self.mem_limit = int(profile.memory.limit) if profile.memory.limit else None
        self.mem_guarantee = int(profile.memory.guarantee) if profile.memory.guarantee else None
        self.cpu_limit = float(profile.cpu.limit) if profile.cpu.limit else None
        self.cpu_guarantee = float(profile.cpu.guarantee) if profile.cpu.guarantee else None
        self.option_env = apply_local_options(self, self.profile_choices)

    def get_args(self) -> list[str]:
        args = super().get_args()
        if running_as_root() and not self.per_user_accounts:
            args.append("--allow-root")
        return args

    # -- environment -----------------------------------------------------------
    def user_env(self, env: dict) -> dict:
        env["USER"] = self.unix_name if self.per_user_accounts else self.user.name
        env["HOME"] = self.home
        env["SHELL"] = "/bin/bash"
        return env

    def get_env(self) -> dict:
        env = super().get_env()
        bins = [os.path.join(sys.prefix, "bin")]
        prefix = os.environ.get("LENS_CODE_SERVER_PREFIX")
        if prefix:
            bins.append(os.path.join(prefix, "node_modules", ".bin"))
        env["PATH"] = os.pathsep.join([*bins, env.get("PATH", os.defpath)])
        tmp = os.path.join(self.home, ".cache", "lens-tmp")
        env["TMPDIR"] = tmp
        env["JUPYTER_VSCODE_PROXY_USE_SOCKET"] = "true"
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(self.home, ".local", "share", "jupyter", "runtime")
        env.update(self.lens_env())
        env.update(getattr(self, "option_env", None) or {})
        return env

    def make_preexec_fn(self, name):
        home, group, umask = self.home, self._cgroup, self.user_umask
        tmp = os.path.join(home, ".cache", "lens-tmp")
        drop = set_user_setuid(self.unix_name, chdir=False) if self.per_user_accounts else None

        def preexec():
            # The hub runs with umask 077 (its state is private); a user's own files
            # get the usual 022, as on any login.
            os.umask(umask)
            if group is not None:
                cgroups.join_cgroup(group)
            if drop is not None:
                drop()
            os.makedirs(tmp, mode=0o700, exist_ok=True)
            os.chdir(home)

        return preexec

    probe_interval = Float(
        0.05, config=True, help="Seconds between checks of whether a starting server listens yet."
    )

    async def wait_until_listening(self, started):
        """Return once the server's port accepts connections, so the hub's first check
        finds it up instead of waiting out its exponential backoff; a server that exits
        first is a SpawnException with its exit status."""
        ip, port = started
        self._server_pgid = self.pid  # poll() forgets the pid once the server is gone
        host = ip or "127.0.0.1"
        while True:
            status = self.proc.poll() if getattr(self, "proc", None) is not None else None
            if status is not None:
                raise SpawnException(
                    f"Your server exited while starting (exit status {status}); an admin can see why "
                    "in the hub's log. Try again, or pick another profile.",
                    reason="exited",
                    status_code=500,
                    log_message=f"server of {self._log_name} exited with {status} before listening on {port}",
                )
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(self.probe_interval)
                continue
            writer.close()
            return started

    # -- lifecycle: the mixin's start/stop wrap LocalProcessSpawner's ------------
    async def before_start(self) -> None:
        await self.ensure_account()
        if self.enforce_memory_limit and self.mem_limit:
            self._cgroup = cgroups.prepare_memory_cgroup(
                f"{self.unix_name}-{self.name or 'default'}", self.mem_limit
            )

    leftover_grace = Float(
        5.0,
        config=True,
        help="Seconds processes a stopped server left behind (a desktop's X server and session, "
        "anything started in the background) get after SIGTERM before SIGKILL.",
    )

    async def after_stop(self) -> None:
        await self.end_leftovers()
        cgroups.remove_cgroup(self._cgroup)

    async def end_leftovers(self) -> None:
        """End what the server started and left running (``end_leftovers``)."""
        pgid, self._server_pgid = self._server_pgid or self.pid, None
        if not await end_leftovers(pgid, self._cgroup, self.leftover_grace):
            self.log.warning("Processes of %s's stopped server are still running", self._log_name)
