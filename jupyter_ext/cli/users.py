"""`lens users add|passwd|disable|enable|list`: local password accounts (admin-created)."""

from __future__ import annotations

from jupyter_ext.cli.main import CommandError
from jupyter_ext.cli.secret_input import add_secret_options, read_secret
from jupyter_ext.paths import state_dir


def register(subparsers) -> None:
    users = subparsers.add_parser("users", help="manage local password accounts")
    users.add_argument("--state", default=str(state_dir()))
    sub = users.add_subparsers(dest="users_command", metavar="ACTION")
    add = sub.add_parser("add", help="create an account and print its password")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="make the account a hub admin")
    add_secret_options(add, "password", "password")  # default: a generated one, printed once
    add.set_defaults(func=add_user)
    passwd = sub.add_parser("passwd", help="set a new (generated or given) password")
    passwd.add_argument("name")
    add_secret_options(passwd, "password", "password")
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

    given = read_secret(args, "password", "password", confirm=True)
    try:
        password = _store(args).create(args.name, given, admin=args.admin)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"user:     {args.name}" + ("" if given else f"\npassword: {password}"))
    return 0


def set_password(args) -> int:
    from jupyter_ext.accounts import AccountError, strong_password

    given = read_secret(args, "password", "password", confirm=True)
    password = given or strong_password()
    if len(password) < 8:
        raise CommandError("passwords must have at least 8 characters")
    try:
        _store(args).update(args.name, password=password)
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(f"user:     {args.name}" + ("" if given else f"\npassword: {password}"))
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
