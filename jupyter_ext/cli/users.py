"""`lens users add|passwd|disable|enable|list`: local password accounts (admin-created)."""

from __future__ import annotations

from jupyter_ext.cli.main import CommandError
from jupyter_ext.paths import state_dir


def register(subparsers) -> None:
    users = subparsers.add_parser("users", help="manage local password accounts")
    users.add_argument("--state", default=str(state_dir()))
    sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    add = sub.add_parser("add", help="create an account and print its password")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="make the account a hub admin")
    add.add_argument("--password", help="set this password instead of a generated one")
    add.set_defaults(func=add_user)
    passwd = sub.add_parser("passwd", help="set a new (generated or given) password")
    passwd.add_argument("name")
    passwd.add_argument("--password")
    passwd.set_defaults(func=set_password)
    for action, disabled in (("disable", True), ("enable", False)):
        p = sub.add_parser(action, help=f"{action} an account")
        p.add_argument("name")
        p.set_defaults(func=lambda args, d=disabled: toggle(args, d))
    ls = sub.add_parser("list", help="list accounts")
    ls.set_defaults(func=list_users)
    users.set_defaults(func=lambda args: users.print_help() or 1)


def _store(args):
    from jupyter_ext.accounts import AccountStore
    from jupyter_ext.hub.state import ensure_state

    return AccountStore.from_url(ensure_state(args.state).lens_db_url)


def add_user(args) -> int:
    from jupyter_ext.accounts import AccountError

    try:
        password = _store(args).create(args.name, args.password, admin=args.admin)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"user:     {args.name}\npassword: {password}")
    return 0


def set_password(args) -> int:
    from jupyter_ext.accounts import AccountError, readable_password

    password = args.password or readable_password()
    try:
        _store(args).update(args.name, password=password)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"user:     {args.name}\npassword: {password}")
    return 0


def toggle(args, disabled: bool) -> int:
    from jupyter_ext.accounts import AccountError

    try:
        _store(args).update(args.name, disabled=disabled)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"{args.name}: {'disabled' if disabled else 'enabled'}")
    return 0


def list_users(args) -> int:
    for a in _store(args).list():
        flags = [f for f, on in (("admin", a.admin), ("disabled", a.disabled)) if on]
        if a.expires_at:
            flags.append(f"expires {a.expires_at:%Y-%m-%d}")
        print(f"{a.username}\t{' '.join(flags)}")
    return 0
