"""Secrets for CLI commands never come from argv (other accounts see every
process's command line in /proc): a prompt, standard input or a file."""

from __future__ import annotations

import getpass
import sys

from jupyter_ext.cli.main import CommandError


def add_secret_options(parser, what: str, flag: str) -> None:
    """--FLAG (prompt), --FLAG-stdin, --FLAG-file PATH; mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    dest = flag.replace("-", "_")
    group.add_argument(f"--{flag}", dest=f"{dest}_prompt", action="store_true",
                       help=f"ask for the {what} (not echoed); it is never given on the command line")
    group.add_argument(f"--{flag}-stdin", dest=f"{dest}_stdin", action="store_true",
                       help=f"read the {what} from the first line of standard input")
    group.add_argument(f"--{flag}-file", dest=f"{dest}_file", metavar="PATH",
                       help=f"read the {what} from the first line of PATH")


def read_secret(args, what: str, flag: str, confirm: bool = False) -> str | None:
    """The secret the options of `add_secret_options` ask for, or None if none was asked for."""
    dest = flag.replace("-", "_")
    if getattr(args, f"{dest}_file", None):
        path = getattr(args, f"{dest}_file")
        try:
            with open(path) as f:
                value = f.readline()
        except OSError as exc:
            raise CommandError(f"--{flag}-file: {exc}") from None
    elif getattr(args, f"{dest}_stdin", False):
        value = sys.stdin.readline()
    elif getattr(args, f"{dest}_prompt", False):
        if not sys.stdin.isatty():
            raise CommandError(f"--{flag} asks on a terminal; use --{flag}-stdin or --{flag}-file otherwise")
        value = getpass.getpass(f"{what}: ")
        if confirm and getpass.getpass(f"{what} (again): ") != value:
            raise CommandError(f"the two {what}s differ")
    else:
        return None
    value = value.rstrip("\r\n")
    if not value:
        raise CommandError(f"empty {what}")
    return value
