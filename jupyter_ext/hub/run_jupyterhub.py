"""The hub's process: ``python -m jupyter_ext.hub.run_jupyterhub -f CONFIG`` is the
``jupyterhub`` command with one start-time fix, as ``lens-singleuser`` has for user
servers: jsonschema's "iri" checker (``rfc3987_syntax``, imported by jupyter_events
as JupyterHub's app is imported) is deferred to its first use, which no hub start
makes. It compiled its lark grammars at every hub start: 1.4-1.7 s here, before
the hub could start its services (``lens hub run`` and every restart).
"""

from __future__ import annotations

import sys

from jupyter_ext.server.singleuser import defer_rfc3987_syntax


def main() -> int | None:
    defer_rfc3987_syntax()  # version-checked (jupyter_ext/upstream.py): skipped elsewhere
    from jupyterhub.app import main as jupyterhub_main

    return jupyterhub_main()


if __name__ == "__main__":
    sys.exit(main())
