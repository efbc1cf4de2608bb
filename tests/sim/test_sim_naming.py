# SPDX-License-Identifier: BSD-3-Clause
"""File names and the regexes that parse them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spherex_dask.errors import ConfigError, IngestError
from spherex_dask.sim import (
    DARK_IRSA_REGEX,
    DARK_POC_REGEX,
    DARK_REGEX,
    LEVEL2_POC_REGEX,
    LEVEL2_REGEX,
    RAW_IRSA_REGEX,
    RAW_POC_REGEX,
    file_name,
    make_exposures,
    parse_file_name,
)

from .conftest import files_of

ALL = (
    RAW_POC_REGEX,
    RAW_IRSA_REGEX,
    LEVEL2_POC_REGEX,
    LEVEL2_REGEX,
    DARK_POC_REGEX,
    DARK_IRSA_REGEX,
)


def test_irsa_example_names() -> None:
    match = LEVEL2_REGEX.match("level2_2025W19_2B_0073_2D3_spx_l2b-v20-2025-247.fits")
    assert match is not None
    assert match.group("planning_period", "large_slew", "small_slew", "detector") == (
        "2025W19_2B",
        "0073",
        "2",
        "3",
    )
    assert match.group("version", "year", "doy") == ("20", "2025", "247")
    assert RAW_POC_REGEX.match("sim_exposure_000123_array_4.fits")["exposure"] == "000123"
    assert DARK_REGEX.match("cal-drk-v1-2025-128_D5.fits")["detector"] == "5"
    assert DARK_REGEX.match("sim_dark_array_2_dark_current.fits")["detector"] == "2"


@pytest.mark.parametrize(
    "name",
    [
        "sim_exposure_000123_array_7.fits",
        "sim_exposure_000123_array_4.fits.gz",
        "xsim_exposure_000123_array_4.fits",
        "sim_dark_array_2.fits",
        "cal-drk-v1-2025-128_D5_dark_current.fits",
        "level2_2025W19_2B_73_2D3_spx_l2b-v1-2025-1.fits",
    ],
)
def test_bad_names_match_nothing(name: str) -> None:
    assert not any(pattern.match(name) for pattern in (*ALL, DARK_REGEX))
    with pytest.raises(IngestError, match="naming convention"):
        parse_file_name(name)


@pytest.mark.parametrize("fixture", ["irsa_sim", "poc_sim"])
def test_generated_names_parse(fixture: str, request: pytest.FixtureRequest) -> None:
    simulation = request.getfixturevalue(fixture)
    for item in simulation.files:
        name = item.path.name
        assert sum(bool(p.match(name)) for p in ALL) == 1, name
        parsed = parse_file_name(name)
        assert parsed["kind"] == item.kind
        assert parsed["detector"] == item.detector
        if item.exposure is None:
            assert DARK_REGEX.match(name)["detector"] == str(item.detector)
        else:
            assert parsed["exposure"] == item.exposure.exposure_id
    assert len({f.path for f in simulation.files}) == len(simulation.files)


def test_poc_raw_regex_groups(poc_sim) -> None:
    for item in files_of(poc_sim, "raw"):
        match = RAW_POC_REGEX.match(item.path.name)
        assert int(match["exposure"]) == item.exposure.exposure_id
        assert int(match["detector"]) == item.detector


def test_irsa_level2_regex_groups(irsa_sim) -> None:
    for item in files_of(irsa_sim, "level2"):
        match = LEVEL2_REGEX.match(item.path.name)
        exposure = item.exposure
        assert match["planning_period"] == exposure.planning_period
        assert int(match["large_slew"]) == exposure.large_slew
        assert int(match["small_slew"]) == exposure.small_slew
        assert (int(match["year"]), int(match["doy"])) == (
            exposure.begin.year,
            exposure.begin.timetuple().tm_yday,
        )


def test_file_name_errors() -> None:
    (exposure,) = make_exposures(1, seed=0)
    with pytest.raises(ConfigError, match="naming"):
        file_name("raw", naming="lsst", detector=1, exposure=exposure)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exposure"):
        file_name("raw", naming="poc", detector=1)
    with pytest.raises(ConfigError, match="valid_from"):
        file_name("dark", naming="irsa", detector=1)
    with pytest.raises(ConfigError, match="kind"):
        file_name("flat", naming="poc", detector=1, exposure=exposure)  # type: ignore[arg-type]


def test_proof_of_concept_dark_names() -> None:
    # The 2020 proof of concept named its darks after an exposure and array, as its raw
    # frames: ``sim_exposure_000000_array_2_dark_current.fits`` (SPHEREX.md).
    name = "sim_exposure_000000_array_2_dark_current.fits"
    assert DARK_POC_REGEX.match(name)["detector"] == "2"
    assert DARK_REGEX.match(name)["detector"] == "2"
    assert parse_file_name(name) == {"kind": "dark", "detector": 2}
    assert not RAW_POC_REGEX.match(name)
    assert not LEVEL2_POC_REGEX.match(name)


@pytest.mark.parametrize("kind", ["raw", "level2"])
def test_name_date_is_the_files_processing_date(kind: str, tmp_path: Path) -> None:
    # IRSA names end in the processing date (year, day of year); the simulated files' DATE
    # card is their processing time, so both must name the same day, also for an exposure
    # whose processing falls on the next day.
    from astropy.io import fits

    from spherex_dask.sim import file_name, make_exposures, make_scene, write_level2, write_raw

    exposure = make_exposures(1, start=datetime(2025, 5, 8, 23, 0, tzinfo=UTC))[0]
    name = file_name(kind, naming="irsa", detector=1, exposure=exposure)  # type: ignore[arg-type]
    writer = write_raw if kind == "raw" else write_level2
    path = writer(tmp_path / name, make_scene(exposure, 1, size=16, seed=0))
    date = datetime.fromisoformat(fits.getval(path, "DATE", 0))
    assert name.endswith(f"-{date:%Y-%j}.fits")
