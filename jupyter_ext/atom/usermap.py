"""Hub user name -> unix account that runs the user's jobs."""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass

from .errors import UnknownUser

HUB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}\Z")


@dataclass(frozen=True)
class UnixAccount:
    name: str
    uid: int
    gid: int
    home: str
    groups: tuple[int, ...]


def unix_account(hub_user: str, template: str = "jupyter-{name}") -> UnixAccount:
    """Resolve ``template`` (e.g. "jupyter-{name}", as the spawner does) to an account.

    When the service does not run as root (dev mode), every job runs as the service's own
    account: there is nobody else it could run as.
    """
    if not HUB_NAME_RE.match(hub_user):
        raise UnknownUser(f"invalid hub user name {hub_user[:40]!r}")
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
    else:
        unix = template.format(name=hub_user)
        try:
            pw = pwd.getpwnam(unix)
        except KeyError:
            raise UnknownUser(
                f"hub user {hub_user!r} has no unix account {unix!r}; "
                "jobs run as that account (create it, or log in once to have it created)"
            ) from None
        if pw.pw_uid == 0:
            raise UnknownUser(f"refusing to run jobs for {hub_user!r} as root ({unix!r})")
    groups = tuple(sorted({g for g in os.getgrouplist(pw.pw_name, pw.pw_gid)}))
    return UnixAccount(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, groups)
