# SPDX-License-Identifier: BSD-3-Clause
"""Observations: identifiers, packing, timing, pointings, dimension records."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spherex_dask.errors import ConfigError, DimensionError
from spherex_dask.sim import (
    make_exposures,
    pack_exposure_id,
    parse_obs_id,
    planning_period_start,
    unpack_exposure_id,
)
from spherex_dask.types import Timespan

planning_periods = st.builds(
    lambda year, week, part, letter: f"{year:04d}W{week:02d}_{part}{letter}",
    st.integers(1000, 9999),
    st.integers(1, 53),
    st.integers(0, 9),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
)


@given(planning_periods, st.integers(0, 9999), st.integers(1, 4))
def test_pack_round_trip(period: str, large: int, small: int) -> None:
    packed = pack_exposure_id(period, large, small)
    assert 0 < packed < 2**63
    assert unpack_exposure_id(packed) == (period, large, small)


@given(
    st.tuples(planning_periods, st.integers(0, 9999), st.integers(1, 4)),
    st.tuples(planning_periods, st.integers(0, 9999), st.integers(1, 4)),
)
def test_pack_is_unique(a: tuple[str, int, int], b: tuple[str, int, int]) -> None:
    assert (pack_exposure_id(*a) == pack_exposure_id(*b)) == (a == b)


@pytest.mark.parametrize(
    ("period", "large", "small"),
    [
        ("2025W19", 1, 1),
        ("2025W54_2B", 1, 1),
        ("2025W19_2b", 1, 1),
        ("2025W19_2B", 10_000, 1),
        ("2025W19_2B", 1, 0),
        ("2025W19_2B", 1, 5),
    ],
)
def test_pack_rejects_bad_input(period: str, large: int, small: int) -> None:
    with pytest.raises(DimensionError):
        pack_exposure_id(period, large, small)


def test_unpack_rejects_non_packed() -> None:
    with pytest.raises(DimensionError, match="not a packed"):
        unpack_exposure_id(12345)


def test_parse_obs_id() -> None:
    assert parse_obs_id("2025W19_2B_0073_2") == ("2025W19_2B", 73, 2)
    with pytest.raises(DimensionError):
        parse_obs_id("2025W19_2B_73_2")


def test_planning_period_start() -> None:
    assert planning_period_start("2025W19_1A") == datetime(2025, 5, 5, tzinfo=UTC)
    assert planning_period_start("2025W19_2B") == datetime(2025, 5, 8, 12, tzinfo=UTC)
    with pytest.raises(DimensionError):
        planning_period_start("2025W53_1A")  # 2025 has 52 ISO weeks


def test_exposures_are_consecutive_slews() -> None:
    exposures = make_exposures(40, seed=3)
    assert [e.obs_id for e in exposures[:2]] == ["2025W19_2B_0001_1", "2025W19_2B_0001_2"]
    for previous, current in itertools.pairwise(exposures):
        if current.large_slew == previous.large_slew:
            assert current.small_slew == previous.small_slew + 1
        else:
            assert (current.large_slew, current.small_slew) == (previous.large_slew + 1, 1)
        assert current.begin - previous.begin == timedelta(seconds=144)
    assert all(1 <= e.small_slew <= 4 for e in exposures)
    assert len({e.exposure_id for e in exposures}) == 40


def test_exposure_fields() -> None:
    start = datetime(2025, 6, 1, 3, tzinfo=UTC)
    (exposure,) = make_exposures(1, seed=0, start=start, planning_period="2025W22_1A")
    assert exposure.begin == start
    assert exposure.begin.tzinfo is not None
    assert exposure.end - exposure.begin == timedelta(seconds=exposure.exposure_time)
    assert exposure.obs_id == "2025W22_1A_0001_1"
    assert unpack_exposure_id(exposure.exposure_id) == ("2025W22_1A", 1, 1)
    assert 0 <= exposure.ra < 360
    assert -90 <= exposure.dec <= 90
    assert 0 <= exposure.roll < 360
    assert exposure.survey in ("wide", "deep")
    assert exposure.timespan == Timespan(exposure.begin, exposure.end)


def test_pointings_walk_along_a_great_circle() -> None:
    exposures = make_exposures(12, seed=5)
    import numpy as np

    ra, dec = np.radians([e.ra for e in exposures]), np.radians([e.dec for e in exposures])
    vectors = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
    steps = np.degrees(np.arccos(np.clip(np.sum(vectors[1:] * vectors[:-1], axis=1), -1, 1)))
    assert np.all(steps > 0.3)
    assert np.all(steps < 5.0)


def test_exposures_deterministic() -> None:
    assert make_exposures(9, seed=11) == make_exposures(9, seed=11)
    assert make_exposures(9, seed=11) != make_exposures(9, seed=12)
    assert make_exposures(0, seed=1) == []
    with pytest.raises(ConfigError):
        make_exposures(-1, seed=1)


def test_dimension_records(irsa_sim) -> None:
    records = irsa_sim.dimension_records()
    assert records["instrument"] == [
        {"name": "SPHEREx", "detector_max": 6, "class_name": "spherex_dask.sim.Simulation"}
    ]
    detectors = {r["id"]: r for r in records["detector"]}
    assert sorted(detectors) == [1, 2, 3, 4, 5, 6]
    assert detectors[3] | {} == {
        "instrument": "SPHEREx",
        "id": 3,
        "band": 3,
        "lmin": 1.63,
        "lmax": 2.41,
        "resolving_power": 41,
        "focal_plane": "short",
    }
    assert detectors[6]["focal_plane"] == "long"
    (period,) = records["planning_period"]
    assert period["name"] == "2025W19_2B"
    assert isinstance(period["timespan"], Timespan)
    exposures = records["exposure"]
    assert [r["obs_id"] for r in exposures] == [e.obs_id for e in irsa_sim.exposures]
    for record in exposures:
        assert set(record) == {
            "instrument",
            "id",
            "obs_id",
            "planning_period",
            "large_slew",
            "small_slew",
            "exposure_time",
            "ra",
            "dec",
            "roll",
            "survey",
            "timespan",
        }
        assert period["timespan"].contains(record["timespan"].begin)
        assert period["timespan"].end_ns >= record["timespan"].end_ns


def test_start_in_another_time_zone_becomes_utc() -> None:
    start = datetime(2025, 5, 9, 2, 0, tzinfo=timezone(timedelta(hours=5)))
    (exposure,) = make_exposures(1, seed=0, start=start)
    assert exposure.begin == start
    assert exposure.begin.utcoffset() == timedelta(0)
    assert exposure.begin.hour == 21
