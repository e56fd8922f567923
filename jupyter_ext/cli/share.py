"""`lens share add|revoke|list|with-me`: share your running server with a user or a group.

JupyterHub's sharing (the ``shares`` API): a share gives its guests access to
one server of yours; they open ``/user/YOU/`` (or ``/user/YOU/SERVER/``) and,
with real-time collaboration on, edit the same notebooks with you. The server's
cost stays yours. Revoking takes effect within seconds (the servers' auth cache,
``ProfileSpawnerMixin.auth_cache_seconds``).

The commands call the lens service (``api/shares``, which shares only its
caller's own servers) with your token: in a terminal of your lens server
``$JUPYTERHUB_API_TOKEN`` already is yours; elsewhere give a token from the hub's
Token page with --token-file, --token-stdin or --token (prompt).
"""

from __future__ import annotations

import os

from jupyter_ext.cli.main import CommandError
from jupyter_ext.cli.secret_input import add_secret_options, read_secret


def register(subparsers) -> None:
    share = subparsers.add_parser("share", help="share your server with another user or a group (JupyterHub sharing)")
    share.add_argument("--hub-url", default=os.environ.get("LENS_BIND_URL", "http://127.0.0.1:8000"),
                       help="the hub's URL when not run in a lens server (there $LENS_SERVICE_URL is used)")
    add_secret_options(share, "hub token", "token")
    sub = share.add_subparsers(dest="share_command", metavar="ACTION")

    def target(parser, required=True):
        who = parser.add_mutually_exclusive_group(required=required)
        who.add_argument("--user", help="a hub user name")
        who.add_argument("--group", help="a hub group name (every member, present and future)")
        parser.add_argument("--server", default="", help="a named server of yours (default: your default server)")
        parser.add_argument("--owner", help="whose server (default: you; an admin may name another user)")

    add = sub.add_parser("add", help="give a user or a group access to your server")
    target(add)
    add.set_defaults(func=cmd_add)
    revoke = sub.add_parser("revoke", help="take a user's or a group's access away (within seconds)")
    target(revoke, required=False)
    revoke.add_argument("--all", action="store_true", help="revoke every share of the server")
    revoke.set_defaults(func=cmd_revoke)
    ls = sub.add_parser("list", help="who your server is shared with")
    ls.add_argument("--server", default="")
    ls.add_argument("--owner")
    ls.set_defaults(func=cmd_list)
    mine = sub.add_parser("with-me", help="servers other users share with you (directly)")
    mine.set_defaults(func=cmd_with_me)
    share.set_defaults(func=lambda args: share.print_help() or 1)


def service_url(args, environ=os.environ) -> str:
    """In a lens server, the lens service as the server reaches it; elsewhere under --hub-url."""
    return environ.get("LENS_SERVICE_URL") or args.hub_url.rstrip("/") + "/services/lens/"


def _client(args):
    from jupyter_ext.clients.base import Sync
    from jupyter_ext.clients.lens import LensClient

    token = read_secret(args, "hub token", "token") or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise CommandError("no hub token: run this in a terminal of your lens server, or give one from the "
                           "hub's Token page with --token-file PATH, --token-stdin or --token (prompt)")
    return Sync(LensClient(service_url(args), token))


def explain(exc) -> str:
    """The refusal in the user's terms (the service's message says who may)."""
    if exc.unreachable or exc.timed_out:
        return f"{exc.message}: is --hub-url (or $LENS_SERVICE_URL) the hub's address, and is the hub up?"
    if exc.message.lstrip().startswith("<"):  # an HTML page: not the lens service's JSON answer
        return (f"{exc.url or 'the hub'} answered HTTP {exc.status} with a web page, not the lens service's "
                "answer: is --hub-url the hub's address, and is the lens service running?")
    if exc.status in (401, 403) and "Only" not in exc.message:
        return f"the hub refused the token: {exc.message}"
    return exc.message


MAX_NAME = 255


def checked_name(flag: str, name: str) -> str:
    """A user or group name as the lens service takes it (it checks again), or CommandError."""
    name = (name or "").strip()
    if not name:
        raise CommandError(f"{flag}: give a name")
    if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise CommandError(f"{flag}: a name is 1 to {MAX_NAME} characters, none of them control characters")
    return name


def answer(value, *keys: str) -> dict:
    """The service's JSON object with KEYS, or CommandError (something else answered at that URL)."""
    if not isinstance(value, dict) or any(k not in value for k in keys):
        raise CommandError("the answer is not the lens service's: is --hub-url (or $LENS_SERVICE_URL) "
                           "the hub's address?")
    return value


def shares_path(owner: str, server: str) -> str:
    from jupyter_ext.clients.base import path

    return path("api", "shares", owner, *([server] if server else []))


def check_path_names(args) -> None:
    """'.' and '..' are no one's server or name: in a URL they are dot segments, which the proxy
    resolves ('--server .' would act on the default server; '..' on no route at all)."""
    for flag in ("server", "owner"):
        if getattr(args, flag, None) in (".", ".."):
            raise CommandError(f"--{flag} {getattr(args, flag)}: no such name")


def _run(args, step):
    from jupyter_ext.clients.base import PeerError

    check_path_names(args)
    lens = _client(args)
    try:
        owner = getattr(args, "owner", None)
        if not owner and step is not cmd_with_me_step:
            owner = answer(lens.me()).get("name") or ""
            if not owner:
                raise CommandError("this token is not a user's: give --owner")
        return step(lens, owner, getattr(args, "server", "") or "")
    except PeerError as exc:
        raise CommandError(explain(exc)) from None
    finally:
        lens.close()


def target_of(args) -> dict:
    if args.user is not None:
        return {"user": checked_name("--user", args.user)}
    return {"group": checked_name("--group", args.group)}


def who_of(target: dict) -> str:
    return " ".join(next(iter(target.items())))


def cmd_add(args) -> int:
    target = target_of(args)

    def step(lens, owner, server):
        model = answer(lens.request("POST", shares_path(owner, server), target), "url")
        print(f"shared {model['url']} with {who_of(target)}; they open it at that path on the hub")

    return _run(args, step) or 0


def cmd_revoke(args) -> int:
    if args.all == (args.user is not None or args.group is not None):
        raise CommandError("give --user NAME, --group NAME or --all")
    body = {"all": True} if args.all else target_of(args)

    def step(lens, owner, server):
        model = answer(lens.request("DELETE", shares_path(owner, server), body), "url")
        what = "every share" if args.all else f"{who_of(body)}'s access"
        print(f"revoked {what} to {model['url']} (open connections close within seconds)")

    return _run(args, step) or 0


def share_rows(model: dict) -> list[str]:
    return [f"{row['kind']:5} {row['name']}  since {(row.get('created_at') or '')[:19]}" for row in model["shares"]]


def cmd_list(args) -> int:
    def step(lens, owner, server):
        model = answer(lens.request("GET", shares_path(owner, server)), "url", "shares")
        rows = share_rows(model)
        print("\n".join(rows) if rows else f"{model['url']} is not shared")

    return _run(args, step) or 0


def cmd_with_me_step(lens, _owner, _server):
    servers = answer(lens.request("GET", "api/shares"), "servers")["servers"]
    for srv in servers:
        print(f"{srv['url']}  (owner {srv['owner']}, shared with {', '.join(srv['via'])})")
    if not servers:
        print("no server is shared with you")


def cmd_with_me(args) -> int:
    return _run(args, cmd_with_me_step) or 0
