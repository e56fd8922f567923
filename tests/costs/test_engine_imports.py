"""The costs engine imports nothing from Jupyter (the CLI, service and magics share it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("jupyter_server", "IPython", "ipywidgets", "jupyterhub", "tornado", "ipykernel")


def test_engine_has_no_jupyter_imports():
    modules = sorted(p.stem for p in (ROOT / "jupyter_ext" / "costs").glob("*.py") if p.stem != "__init__")
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module('jupyter_ext.costs.' + m)\n"
            "import jupyter_ext.cli.costs, jupyter_ext.cli.prices\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert len(modules) >= 12
