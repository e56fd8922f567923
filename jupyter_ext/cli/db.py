"""`lens db status|upgrade`: the schema version of the lens database (Alembic migrations)."""

from __future__ import annotations

from jupyter_ext.cli.main import CommandError


def register(subparsers) -> None:
    p = subparsers.add_parser("db", help="the lens database: schema status and upgrades")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION")
    status = sub.add_parser("status", help="the database's schema revision and this lens's (exit 1 if they differ)")
    up = sub.add_parser("upgrade", help="upgrade the database to this lens's schema (SQLite: a backup copy first)")
    up.add_argument("--no-backup", action="store_true", help="do not copy a SQLite file before upgrading")
    for s in (status, up):
        s.add_argument("--db", help="database URL (default: $LENS_DB_URL, else $LENS_STATE_DIR/lens.sqlite, "
                                    "the database the service and every lens command use)")
    status.set_defaults(func=cmd_status)
    up.set_defaults(func=cmd_upgrade)
    p.set_defaults(func=lambda args: p.print_help() or 1)


def _engine(args):
    from jupyter_ext.db.engine import make_engine

    return make_engine(args.db)


def _where(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def cmd_status(args) -> int:
    from jupyter_ext.db.migrate import schema_status

    engine = _engine(args)
    with engine.execution_options(lens_readonly=True).connect() as conn:
        st = schema_status(conn)
    print(f"database: {_where(engine)}")
    print(f"state:    {st.state}")
    print(f"revision: {st.revision or '-'}")
    print(f"head:     {st.head}")
    if st.strangers:
        print(f"unknown tables: {', '.join(st.strangers)}")
    if st.state in ("unversioned", "behind"):
        print("run `lens db upgrade` to bring it to the head revision")
    return 0 if st.state == "current" else 1


def cmd_upgrade(args) -> int:
    from jupyter_ext.db.migrate import SchemaError, upgrade

    engine = _engine(args)
    try:
        result = upgrade(engine, backup=not args.no_backup)
    except SchemaError as exc:
        raise CommandError(str(exc)) from None
    if result.backup:
        print(f"backup: {result.backup}")
    before = result.before.revision or result.before.state
    if result.before.state == "current":
        print(f"{_where(engine)} is already at revision {result.after.revision}")
    else:
        print(f"{_where(engine)}: {before} -> {result.after.revision}")
    return 0
