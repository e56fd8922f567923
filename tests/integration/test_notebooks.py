"""Tutorial notebooks run against the local stack, as a user's kernel would."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.integration.conftest import as_kernel_of

pytestmark = pytest.mark.integration
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="module")
def notebook_user(stack):
    name = "nbuser"
    token = stack.create_user(name)
    stack.spawn(name, "lab")
    yield name, token
    stack.stop_server(name)


def test_atom_jobs_notebook(stack, notebook_user, monkeypatch, tmp_path):
    name, token = notebook_user
    as_kernel_of(monkeypatch, stack, name, token)
    nb = nbformat.read(NOTEBOOKS / "03-atom-jobs.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "3628800" in outputs and "model done" in outputs
