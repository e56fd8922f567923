"""The ``lens`` console script.

Each area registers its own sub-commands in ``jupyter_ext/cli/<area>.py``
with a ``register(subparsers)`` function; this module only dispatches, so that
areas stay independent and imports stay lazy.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules under jupyter_ext.cli; a missing one is skipped.
COMMAND_MODULES = ("hub", "users", "prices", "costs", "atom", "archive", "workshop", "share", "db")


class CommandError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lens", description="lens research computing hub")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"jupyter_ext.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"jupyter_ext.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result = args.func(args)
    except CommandError as exc:
        print(f"lens: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # SchemaError (the database needs `lens db upgrade`) can only come from a
        # command that imported the db layer: importing it for every command cost
        # sqlalchemy's ~15 MB and 0.1 s (e.g. in every `lens archive` process)
        migrate = sys.modules.get("jupyter_ext.db.migrate")
        if migrate is not None and isinstance(exc, migrate.SchemaError):
            print(f"lens: {exc}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)


if __name__ == "__main__":
    # Run the imported module's main: under `python -m`, this file is __main__,
    # whose CommandError would differ from the one the commands raise.
    from jupyter_ext.cli.main import main as _main

    sys.exit(_main())
