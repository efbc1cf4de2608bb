# SPDX-License-Identifier: BSD-3-Clause
"""A small registry with raws in RUN "rawexpr" and darks certified in CALIBRATION "calib"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spherex_dask.registry import Registry
from spherex_dask.types import CollectionType, DatasetType, Timespan

START = datetime(2025, 5, 1, tzinfo=UTC)
RAW = DatasetType(
    name="raw", dimensions=("instrument", "exposure", "detector"), storage_class="SpectralImage"
)
DARK = DatasetType(
    name="dark",
    dimensions=("instrument", "detector"),
    storage_class="SpectralImage",
    is_calibration=True,
)


def exposure_records(n_exposures: int, per_period: int) -> list[dict]:
    """Exposures 1..n, one hour apart, ``per_period`` to a planning period P1, P2, ..."""
    records = []
    for e in range(1, n_exposures + 1):
        begin = START + timedelta(hours=e)
        records.append(
            {
                "instrument": "SPHEREx",
                "id": e,
                "obs_id": f"obs{e:05d}",
                "planning_period": f"P{(e - 1) // per_period + 1}",
                "timespan": Timespan(begin, begin + timedelta(minutes=2)),
                "large_slew": e,
                "small_slew": 1,
                "exposure_time": 100.0,
                "ra": 0.0,
                "dec": 0.0,
                "roll": 0.0,
                "survey": "wide",
            }
        )
    return records


def fill_registry(
    registry,
    *,
    n_exposures: int = 4,
    n_detectors: int = 2,
    per_period: int = 2,
    dark_detectors=None,
    dark_validity: Timespan | None = None,
    darks_in_run: bool = False,
):
    """Insert dimension records, raws in "rawexpr" and darks in "darkr" certified in "calib"."""
    registry.insert_dimension_records(
        "instrument", [{"name": "SPHEREx", "detector_max": 6, "class_name": "spherex"}]
    )
    detectors = range(1, n_detectors + 1)
    registry.insert_dimension_records(
        "detector",
        [
            {
                "instrument": "SPHEREx",
                "id": d,
                "band": d,
                "lmin": 0.75,
                "lmax": 1.1,
                "resolving_power": 40.0,
                "focal_plane": "short",
            }
            for d in detectors
        ],
    )
    exposures = exposure_records(n_exposures, per_period)
    periods = sorted({r["planning_period"] for r in exposures})
    registry.insert_dimension_records(
        "planning_period",
        [{"instrument": "SPHEREx", "name": p, "timespan": Timespan(START, None)} for p in periods],
    )
    registry.insert_dimension_records("exposure", exposures)
    registry.register_dataset_type(RAW)
    registry.register_dataset_type(DARK)
    registry.register_run("rawexpr")
    registry.register_run("darkr")
    registry.register_collection("calib", CollectionType.CALIBRATION)
    registry.insert_datasets(
        "raw",
        [
            {"instrument": "SPHEREx", "exposure": e, "detector": d}
            for e in range(1, n_exposures + 1)
            for d in detectors
        ],
        "rawexpr",
    )
    dark_detectors = detectors if dark_detectors is None else dark_detectors
    darks = registry.insert_datasets(
        "dark", [{"instrument": "SPHEREx", "detector": d} for d in dark_detectors], "darkr"
    )
    if not darks_in_run:
        registry.certify("calib", darks, dark_validity or Timespan(START, None))
    return registry


@pytest.fixture
def make_registry(tmp_path):
    """Factory: a fresh SQLite registry filled by :func:`fill_registry`."""
    made = []

    def make(**kwargs):
        registry = Registry.create("sqlite:///" + str(tmp_path / f"r{len(made)}.sqlite3"))
        made.append(registry)
        return fill_registry(registry, **kwargs)

    yield make
    for registry in made:
        registry.close()
