# SPDX-License-Identifier: BSD-3-Clause
"""A small repository shared by the Intake tests: 2 exposures x detectors 1, 2 of 32 x 32."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import dask
import pytest

from spherex_dask.butler import Butler
from spherex_dask.ingest import ingest_simulated
from spherex_dask.sim import simulate


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw frames in ``rawexpr`` and darks in ``darkr``."""
    base = tmp_path_factory.mktemp("intake")
    sim = simulate(base / "sim", size=32, exposures=2, detectors=(1, 2), seed=3)
    root = base / "repo"
    with Butler.create(root) as butler:
        ingest_simulated(butler, sim.root, ingest_type="raw")
        ingest_simulated(butler, sim.root, ingest_type="dark")
    return root


@pytest.fixture
def butler(repo: Path) -> Iterator[Butler]:
    """A read-only Butler on the shared repository."""
    with Butler(repo, collections=["rawexpr"], writeable=False) as b:
        yield b


def _refuse_to_compute(*args: object, **kwargs: object) -> None:
    raise AssertionError("pixels were read: a dask graph was computed")


@pytest.fixture
def no_compute() -> Callable[[], AbstractContextManager[object]]:
    """``with no_compute(): ...`` fails the test if a dask graph is computed inside."""
    return lambda: dask.config.set(scheduler=_refuse_to_compute)
