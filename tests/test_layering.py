# SPDX-License-Identifier: BSD-3-Clause
"""The layering rules of STYLE.md, checked by importing packages in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def modules_after_import(module: str) -> set[str]:
    """Top-level module names in sys.modules after importing ``module`` in a subprocess."""
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} | set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        (
            "spherex_dask.registry",
            ["xarray", "zarr", "dask", "astropy", "spherex_dask.io", "spherex_dask.pipeline"],
        ),
        ("spherex_dask.types", ["sqlalchemy", "xarray", "dask", "spherex_dask.registry"]),
        ("spherex_dask.io", ["sqlalchemy", "spherex_dask.registry", "spherex_dask.pipeline"]),
    ],
)
def test_layering(module: str, forbidden: list[str]) -> None:
    """Importing a layer does not pull in the layers it must not depend on."""
    loaded = modules_after_import(module)
    assert sorted(set(forbidden) & loaded) == []


def test_fork_server_starts_before_the_heavy_imports() -> None:
    """What the ``run`` command imports before it spawns the workers' fork server (the CLI
    and ``_forkserver``) loads none of dask, distributed (whose defaults must be read
    first), numpy, SQLAlchemy and the dimension universe: every import made before the spawn
    delays the workers."""
    loaded = modules_after_import("spherex_dask.cli._main, spherex_dask.pipeline._forkserver")
    heavy = ["dask", "distributed", "numpy", "sqlalchemy", "spherex_dask.dimensions"]
    assert sorted(set(heavy) & loaded) == []
