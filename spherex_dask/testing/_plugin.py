# SPDX-License-Identifier: BSD-3-Clause
"""pytest fixtures for task authors (registered as the ``spherex_dask`` pytest plugin).

* ``spherex_sim`` (session): small simulated raws and darks (2 exposures x 2 detectors, 32x32).
* ``spherex_butler``: a fresh repository with them ingested (runs ``rawexpr`` and ``darkr``),
  the darks certified in the CALIBRATION collection ``calib``, searching ``rawexpr, calib``.
* ``spherex_data_ids``: the (instrument, exposure, detector) data IDs of the raws.
* ``spherex_client``: a ``distributed.Client`` of a local cluster of 2 worker processes.

A test of a new task then takes a few lines::

    def test_my_task(spherex_butler, spherex_data_ids):
        out = run_task(MyTask(), spherex_butler, spherex_data_ids[0])
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import distributed

    from ..butler import Butler
    from ..sim import Simulation

__all__ = ["make_butler", "spherex_butler", "spherex_client", "spherex_data_ids", "spherex_sim"]


def make_butler(root: str | Path, sim: Simulation) -> Butler:
    """A new repository at ``root`` holding ``sim``'s raws and certified darks."""
    from ..butler import Butler
    from ..ingest import ingest_simulated
    from ..types import CollectionType, Timespan

    butler = Butler.create(root)
    ingest_simulated(butler, sim.root, ingest_type="raw", transfer="symlink")
    darks = ingest_simulated(butler, sim.root, ingest_type="dark", transfer="symlink")
    butler.registry.register_collection("calib", CollectionType.CALIBRATION)
    butler.registry.certify("calib", darks, Timespan(sim.timespan.begin, None))
    butler.collections = ["rawexpr", "calib"]
    return butler


@pytest.fixture(scope="session")
def spherex_sim(tmp_path_factory: pytest.TempPathFactory) -> Simulation:
    """Small simulated data shared by the session (2 exposures x detectors 1-2, 32x32)."""
    from ..sim import simulate

    return simulate(tmp_path_factory.mktemp("spherex_sim"), exposures=2, detectors=(1, 2),
                    size=32, seed=1)


@pytest.fixture
def spherex_butler(tmp_path: Path, spherex_sim: Simulation) -> Iterator[Butler]:
    """A fresh repository with the simulated raws and certified darks."""
    butler = make_butler(tmp_path / "spherex_repo", spherex_sim)
    yield butler
    butler.close()


@pytest.fixture
def spherex_data_ids(spherex_butler: Butler) -> list[dict[str, Any]]:
    """Data IDs of the raws in ``spherex_butler``, sorted."""
    refs = spherex_butler.registry.query_datasets("raw", collections=["rawexpr"])
    ids = [
        {k: r.data_id[k] for k in ("instrument", "exposure", "detector")} for r in refs
    ]
    return sorted(ids, key=lambda d: (d["exposure"], d["detector"]))


@pytest.fixture(scope="session")
def spherex_client() -> Iterator[distributed.Client]:
    """A client of a local cluster of 2 worker processes (closed at the end of the session)."""
    from ..pipeline import make_client

    client = make_client(n_workers=2)
    yield client
    client.close()
