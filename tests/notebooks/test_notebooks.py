# SPDX-License-Identifier: BSD-3-Clause
"""The notebooks in ``notebooks/`` run from top to bottom, and are committed with their outputs.

Each notebook is executed with nbclient in a copy of ``notebooks/`` (next to a copy of
``catalogs/``, which ``03_intake`` opens by relative path), so the run leaves the checkout clean.
"""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
#: Seconds a single cell may take before the run is failed.
CELL_TIMEOUT = 300
#: Upper bound for the committed notebooks (outputs included).
MAX_TOTAL_BYTES = 1_500_000


def test_the_three_notebooks_are_there() -> None:
    assert {"01_quickstart.ipynb", "02_pipeline_on_dask.ipynb", "03_intake.ipynb"} <= set(NAMES)


def _check_kernel_cell() -> nbformat.NotebookNode:
    """A first cell that fails unless the kernel runs this test's Python environment."""
    return nbformat.v4.new_code_cell(
        "import sys\n"
        f"assert sys.prefix == {sys.prefix!r}, "
        "f'the python3 kernel runs {sys.executable}, not the test environment'"
    )


@pytest.mark.integration
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str, tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("_work", ".ipynb_checkpoints")
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks", ignore=ignore)
    shutil.copytree(ROOT / "catalogs", tmp_path / "catalogs")
    workdir = tmp_path / "notebooks"
    nb = nbformat.read(workdir / name, as_version=4)
    nb.cells.insert(0, _check_kernel_cell())
    client = NotebookClient(
        nb,
        kernel_name="python3",  # jupyter_client starts kernelspecs whose argv is "python" with sys.executable
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell errors
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    assert (workdir / "_work").is_dir()  # the notebook made its data next to itself


def _outputs(path: Path) -> list[nbformat.NotebookNode]:
    nb = nbformat.read(path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.parametrize("name", NAMES)
def test_committed_with_plots_and_no_errors(name: str) -> None:
    path = NOTEBOOKS / name
    nbformat.validate(nbformat.read(path, as_version=4))
    outputs = _outputs(path)
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})]
    assert pngs, f"{name} is committed without its plots; execute it and commit the outputs"
    assert all(base64.b64decode(png).startswith(b"\x89PNG") for png in pngs)


def test_committed_notebooks_stay_small() -> None:
    total = sum((NOTEBOOKS / name).stat().st_size for name in NAMES)
    assert total < MAX_TOTAL_BYTES
