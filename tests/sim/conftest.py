# SPDX-License-Identifier: BSD-3-Clause
"""Small simulated data sets shared by the simulator tests (64 x 64 pixels)."""

from __future__ import annotations

import pytest

from spherex_dask.sim import Simulation, simulate

SIZE = 64


@pytest.fixture(scope="session")
def irsa_sim(tmp_path_factory: pytest.TempPathFactory) -> Simulation:
    """Two exposures x detectors 2 and 5, IRSA names, with Level-2 files."""
    return simulate(
        tmp_path_factory.mktemp("irsa"),
        exposures=2,
        detectors=(2, 5),
        size=SIZE,
        seed=7,
        level2=True,
        naming="irsa",
    )


@pytest.fixture(scope="session")
def poc_sim(tmp_path_factory: pytest.TempPathFactory) -> Simulation:
    """Five exposures x detectors 1 and 4, proof-of-concept names, with Level-2 files."""
    return simulate(
        tmp_path_factory.mktemp("poc"), exposures=5, detectors=(1, 4), size=SIZE, level2=True
    )


def files_of(simulation: Simulation, kind: str) -> list:
    """The simulation's files of one kind."""
    return [f for f in simulation.files if f.kind == kind]
