# SPDX-License-Identifier: BSD-3-Clause
"""Record <-> row conversion, schema generation and URL parsing (no database needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spherex_dask.dimensions import DimensionUniverse
from spherex_dask.errors import ConfigError
from spherex_dask.registry._database import parse_url
from spherex_dask.registry._records import ElementLayout, record_to_row, row_to_record
from spherex_dask.registry._schema import build_tables
from spherex_dask.types import DimensionRecord, Timespan, ns_to_datetime

UNIVERSE = DimensionUniverse.default()
LAYOUT = ElementLayout(UNIVERSE, "exposure")


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """``strategy`` or None."""
    return st.none() | strategy


finite = st.floats(allow_nan=False, allow_infinity=False)
micro_ns = st.integers(min_value=0, max_value=4_000_000_000_000_000).map(lambda n: n // 1000 * 1000)


@st.composite
def exposure_records(draw: st.DrawFn) -> DimensionRecord:
    """Random, valid exposure records."""
    values = {
        "instrument": draw(st.text(min_size=1, max_size=32)),
        "id": draw(st.integers(min_value=-(2**62), max_value=2**62)),
        "planning_period": draw(maybe(st.text(min_size=1, max_size=32))),
        "obs_id": draw(maybe(st.text(max_size=32))),
        "large_slew": draw(maybe(st.integers(min_value=-(2**62), max_value=2**62))),
        "small_slew": draw(maybe(st.integers(0, 4))),
        "exposure_time": draw(maybe(finite)),
        "ra": draw(maybe(finite)),
        "dec": draw(maybe(finite)),
        "roll": draw(maybe(finite)),
        "survey": draw(maybe(st.sampled_from(["wide", "deep"]))),
    }
    timespan = None
    if draw(st.booleans()):
        begin, length = draw(micro_ns), draw(micro_ns)
        timespan = Timespan(ns_to_datetime(begin), ns_to_datetime(begin + length))
    return DimensionRecord(element="exposure", values=values, timespan=timespan)


@given(exposure_records())
def test_record_row_round_trip(record: DimensionRecord) -> None:
    """A record survives conversion to a table row and back."""
    assert row_to_record(LAYOUT, record_to_row(LAYOUT, record)) == record


def test_unbounded_timespan_round_trip() -> None:
    """Unbounded timespan ends are stored as sentinels and come back as None."""
    record = DimensionRecord(
        element="planning_period",
        values={"instrument": "S", "name": "p"},
        timespan=Timespan(None, ns_to_datetime(10**18)),
    )
    layout = ElementLayout(UNIVERSE, "planning_period")
    assert row_to_record(layout, record_to_row(layout, record)) == record


def test_element_name_accepted_for_key() -> None:
    """A record may name its key by the element name (``exposure``) instead of ``id``."""
    row = record_to_row(LAYOUT, {"instrument": "S", "exposure": 5})
    assert row["id"] == 5


def test_schema_rejects_reserved_names() -> None:
    """A dimension that would clash with the registry's own tables is a config error."""
    bad = DimensionUniverse({"elements": {"dataset": {"key": {"name": "id", "type": "int"}}}})
    with pytest.raises(ConfigError, match="dataset"):
        build_tables(bad)


def test_parse_url() -> None:
    """Bare paths become SQLite URLs; ?schema= is split off PostgreSQL URLs."""
    assert parse_url("/tmp/r.sqlite3")[0].get_backend_name() == "sqlite"
    url, schema = parse_url("postgresql+psycopg://u@h:5432/db?schema=abc")
    assert schema == "abc"
    assert "schema" not in url.query
    with pytest.raises(ConfigError, match="identifier"):
        parse_url("postgresql+psycopg://u@h/db", schema="a;drop")
