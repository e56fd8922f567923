"""Pure rendering of job scripts. User text only ever appears shell-quoted (shlex.quote),
or, for a user's own script body, after the first command line, where neither sbatch
(#SBATCH parsing stops at the first command) nor our own preamble can be affected."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from .errors import SpecError
from .spec import ENV_KEY_RE

PREAMBLE_MARK = ": lens-atom-job  # first command: no #SBATCH line below this is read"


def export_lines(env: Mapping[str, str]) -> list[str]:
    lines = []
    for key, value in env.items():
        if not ENV_KEY_RE.match(key):  # already validated; refuse rather than render
            raise SpecError(f"env.{key[:40]}", "invalid variable name")
        lines.append(f"export {key}={shlex.quote(value)}")
    return lines


def params_case(params: Sequence[Mapping[str, str]], index_var: str) -> list[str]:
    """A ``case`` on the array index that exports each member's parameters."""
    if not params:
        return []
    lines = [f'case "${{{index_var}:-0}}" in']
    for i, p in enumerate(params):
        exports = " ".join(f"export {k}={shlex.quote(v)};" for k, v in export_items(p))
        lines.append(f"  {i}) {exports} ;;")
    lines.append("esac")
    return lines


def export_items(p: Mapping[str, str]):
    for k, v in p.items():
        if not ENV_KEY_RE.match(k):
            raise SpecError(f"array.params.{k[:40]}", "invalid variable name")
        yield k, v


def render_script(*, argv: Sequence[str] = (), script: str | None = None,
                  env: Mapping[str, str] | None = None,
                  params: Sequence[Mapping[str, str]] = (), index_var: str | None = None,
                  shell: str = "/bin/bash") -> str:
    """A batch script that sets ``env``, the array member's parameters, then either execs
    ``argv`` literally or runs the user's ``script`` body."""
    if bool(argv) == (script is not None):
        raise SpecError("command", "exactly one of command or script", "command | script")
    lines = [f"#!{shell}", PREAMBLE_MARK]
    lines += export_lines(env or {})
    if index_var:
        lines.append(f'export LENS_ARRAY_INDEX="${{{index_var}:-0}}"')
        lines += params_case(params, index_var)
    if argv:
        lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
        return "\n".join(lines) + "\n"
    if "\r" in script:
        raise SpecError("script", "contains carriage returns (DOS line ends)", "unix line ends")
    return "\n".join(lines) + "\n# --- user script ---\n" + script + ("\n" if not script.endswith("\n") else "")
