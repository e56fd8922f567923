"""The db package imports nothing from Jupyter: every engine and process may use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("jupyter_server", "IPython", "ipywidgets", "jupyterhub", "tornado", "ipykernel", "traitlets")


def test_db_package_has_no_jupyter_imports():
    code = ("import sys, sqlalchemy as sa\n"
            "import jupyter_ext.cli.db, jupyter_ext.atom.store, jupyter_ext.workshop.store\n"
            "from jupyter_ext.db import engine, migrate\n"
            "migrate.ensure_schema(engine.make_engine('sqlite://'))  # runs the migrations\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
