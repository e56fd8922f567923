"""notebooks/02-pangeo-workflow.ipynb, executed with nbclient against the real
gateway (clusters as the user's unix account) and moto's S3 server."""

from __future__ import annotations

import ast
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_ext.gateway.settings import GatewaySettings
from jupyter_ext.hub.dask_env import gateway_env
from tests.dask.conftest import SCRATCH_BUCKET
from tests.dask.support import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.aws]

NOTEBOOK = os.path.join(ROOT, "notebooks", "02-pangeo-workflow.ipynb")


def test_pangeo_notebook_runs(dask_stack, monkeypatch, tmp_path):
    s = dask_stack
    user = s.users["b"]
    settings = GatewaySettings(
        scratch_bucket=SCRATCH_BUCKET,
        gateway_port=s.gateway.port,
        proxy_port=s.gateway.proxy_port,
        s3_endpoint_url=s.aws["AWS_ENDPOINT_URL"],
    )
    env = gateway_env(user, f"http://127.0.0.1:{s.gateway.port}", settings)
    env.update(s.aws)
    env["JUPYTERHUB_API_TOKEN"] = s.tokens["b"]
    env["LENS_PANGEO_SIZE_GB"] = os.environ.get("LENS_PANGEO_SIZE_GB", "0.1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    elapsed = time.perf_counter() - t0
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    line = [ln for ln in outputs.splitlines() if ln.startswith("LENS_TIMINGS")][-1]
    timings = ast.literal_eval(line.split(" ", 1)[1])
    print(f"notebook {env['LENS_PANGEO_SIZE_GB']} GB: total {elapsed:.1f}s, {timings}")
    assert timings["compute_s"] > 0 and timings["write_s"] > 0
    images = [
        o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert images, "the plot cell produced no image"
