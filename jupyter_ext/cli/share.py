"""`lens share add|revoke|list|with-me`: share your running server with a user or a group.

JupyterHub's sharing (the ``shares`` API): a share gives its guests access to
one server of yours; they open ``/user/YOU/`` (or ``/user/YOU/SERVER/``) and,
with real-time collaboration on, edit the same notebooks with you. The server's
cost stays yours. Revoking takes effect within seconds (the servers' auth cache,
``ProfileSpawnerMixin.auth_cache_seconds``).

The token is yours: in a terminal of your lens server ``$JUPYTERHUB_API_TOKEN``
already is (its scopes include sharing your own servers); elsewhere give a token
from the hub's Token page with --token-file, --token-stdin or --token (prompt).
"""

from __future__ import annotations

import os

from jupyter_ext.cli.main import CommandError
from jupyter_ext.cli.secret_input import add_secret_options, read_secret


def register(subparsers) -> None:
    share = subparsers.add_parser("share", help="share your server with another user or a group (JupyterHub sharing)")
    share.add_argument("--hub-url", default=os.environ.get("LENS_BIND_URL", "http://127.0.0.1:8000"),
                       help="the hub's URL when not run in a lens server (there $JUPYTERHUB_API_URL is used)")
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


def hub_api_url(args, environ=os.environ) -> str:
    """In a lens server, the hub's API as the server reaches it; elsewhere --hub-url's."""
    return environ.get("JUPYTERHUB_API_URL") or args.hub_url.rstrip("/") + "/hub/api"


def _client(args):
    from jupyter_ext.clients.base import Sync
    from jupyter_ext.clients.hub import HubClient

    token = read_secret(args, "hub token", "token") or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise CommandError("no hub token: run this in a terminal of your lens server, or give one from the "
                           "hub's Token page with --token-file PATH, --token-stdin or --token (prompt)")
    return Sync(HubClient(hub_api_url(args), token))


def explain(exc, owner: str, server: str) -> str:
    """The hub's refusal in the user's terms."""
    where = f"{owner}/{server}" if server else owner
    if exc.status == 403:
        return f"you may not share or revoke {where}'s server: only its owner (or an admin) can ({exc.message})"
    if exc.status == 404:
        return f"{where} has no such server ({exc.message})"
    return exc.message


def _run(args, step):
    from jupyter_ext.clients.base import PeerError

    hub = _client(args)
    try:
        who = hub.whoami()
        owner = getattr(args, "owner", None) or who.get("name") or ""
        if not owner:
            raise CommandError("this token is not a user's: give --owner")
        try:
            return step(hub, owner, getattr(args, "server", "") or "")
        except PeerError as exc:
            raise CommandError(explain(exc, owner, getattr(args, "server", "") or "")) from None
    except PeerError as exc:  # whoami: a bad token or an unreachable hub
        raise CommandError(f"the hub refused the token or cannot be reached: {exc.message}") from None
    finally:
        hub.close()


def server_url(owner: str, server: str) -> str:
    return f"/user/{owner}/{server + '/' if server else ''}"


def cmd_add(args) -> int:
    def step(hub, owner, server):
        share = hub.share_server(owner, server, user=args.user, group=args.group)
        who = f"user {args.user}" if args.user else f"group {args.group}"
        url = (share.get("server") or {}).get("url") or server_url(owner, server)
        print(f"shared {url} with {who}; they open it at that path on the hub")

    return _run(args, step) or 0


def cmd_revoke(args) -> int:
    if args.all == bool(args.user or args.group):
        raise CommandError("give --user NAME, --group NAME or --all")

    def step(hub, owner, server):
        if args.all:
            hub.revoke_all_shares(owner, server)
            print(f"revoked every share of {server_url(owner, server)}")
        else:
            hub.revoke_share(owner, server, user=args.user, group=args.group)
            who = f"user {args.user}" if args.user else f"group {args.group}"
            print(f"revoked {who}'s access to {server_url(owner, server)}")

    return _run(args, step) or 0


def share_rows(items: list[dict]) -> list[str]:
    rows = []
    for item in items:
        who = f"user  {item['user']['name']}" if item.get("user") else f"group {item['group']['name']}"
        rows.append(f"{who}  since {(item.get('created_at') or '')[:19]}")
    return rows


def cmd_list(args) -> int:
    def step(hub, owner, server):
        rows = share_rows(hub.server_shares(owner, server))
        print("\n".join(rows) if rows else f"{server_url(owner, server)} is not shared")

    return _run(args, step) or 0


def cmd_with_me(args) -> int:
    def step(hub, me, _server):
        items = hub.shared_with(me)
        for item in items:
            srv = item.get("server") or {}
            print(f"{srv.get('url', '')}  (owner {(srv.get('user') or {}).get('name', '?')})")
        if not items:
            print("no server is shared with you directly (group shares: ask the owner)")

    return _run(args, step) or 0
