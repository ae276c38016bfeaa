"""The analyst notebooks run top to bottom against the demo workspace and the test cluster."""

from __future__ import annotations

import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import DEMO_CATALOG, REPO

pytestmark = pytest.mark.notebook


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
def test_notebook_runs(name, demo, client, monkeypatch):
    _, ws, _ = demo
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws.root))
    monkeypatch.setenv("WORKBENCH_CATALOG", str(DEMO_CATALOG))
    monkeypatch.setenv("DASK_WORKBENCH__CLUSTER__PROFILE", client.scheduler.address)
    # The "python3" kernelspec starts `python` from PATH: make that this virtualenv's.
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPO / "notebooks")}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the cube and the chart render
    assert os.environ["WORKBENCH_WORKSPACE"] == str(ws.root)
