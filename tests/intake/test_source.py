# SPDX-License-Identifier: BSD-3-Clause
"""The old-API driver: lazy stacked xarray from a registry selection, search, pickling."""

from __future__ import annotations

import pickle

import dask.array as da
import intake
import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import (
    DataIdError,
    DatasetNotFoundError,
    QuerySyntaxError,
    UnknownNameError,
)
from spherex_dask.intake import REPO_ENV_VAR, SpherexCatalog, SpherexSource, resolve_repo


def _exposures(butler) -> list[int]:
    return sorted({ref.data_id["exposure"] for ref in butler.query_datasets("raw")})


def _all_dask(obj: xr.Dataset | xr.DataArray) -> bool:
    variables = [obj] if isinstance(obj, xr.DataArray) else list(obj.data_vars.values())
    return all(isinstance(v.data, da.Array) for v in variables)


def test_to_dask_stacks_exposure_by_detector_lazily(repo, no_compute):
    """The whole selection is one Dataset with dims (exposure, detector, y, x), unread."""
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with no_compute():
        ds = src.to_dask()
    assert ds.image.dims == ("exposure", "detector", "y", "x")
    assert ds.sizes["detector"] == 2
    assert ds.sizes["exposure"] == 2
    assert list(ds.detector.values) == [1, 2]
    assert str(ds.instrument.values) == "SPHEREx"
    assert _all_dask(ds)
    assert ds.wavelength.dims == ("exposure", "detector", "y", "x")


def test_values_equal_butler_get(repo, butler):
    """Every cell of the stack holds what Butler.get returns for that data ID."""
    ds = SpherexSource("raw", str(repo), collections="rawexpr").to_dask()
    for exposure in _exposures(butler):
        for detector in (1, 2):
            expected = butler.get("raw", instrument="SPHEREx", exposure=exposure, detector=detector)
            cell = ds.sel(exposure=exposure, detector=detector)
            for name in expected.data_vars:
                np.testing.assert_array_equal(cell[name].values, expected[name].values)
            np.testing.assert_array_equal(cell.wavelength.values, expected.wavelength.values)


def test_single_data_id_has_scalar_coords(repo, butler, no_compute):
    """A selection of one dataset keeps (y, x) and carries its data ID as coordinates."""
    exposure = _exposures(butler)[0]
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with no_compute():
        one = src.search(exposure=exposure, detector=2).to_dask()
    assert one.image.dims == ("y", "x")
    assert int(one.exposure) == exposure
    assert int(one.detector) == 2
    assert _all_dask(one)


def test_search_narrows_with_sql(repo, no_compute):
    """search(where=...) returns a narrower source; the original is unchanged."""
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    narrowed = src.search(where="detector = 2")
    with no_compute():
        ds = narrowed.to_dask()
    assert dict(ds.sizes) == {"exposure": 2, "y": 32, "x": 32}
    assert int(ds.detector) == 2
    assert narrowed.discover()["npartitions"] == 2
    assert src.discover()["npartitions"] == 4
    assert narrowed.selection.where == "detector = 2"


def test_search_and_combines_conditions(repo, butler):
    """Successive searches AND their expressions and data IDs."""
    exposure = _exposures(butler)[1]
    src = SpherexSource("raw", str(repo), collections="rawexpr", where="detector IN (1..2)")
    narrowed = src.search("exposure = :e", bind={"e": exposure}).search(detector=1)
    assert narrowed.selection.where == "(detector IN (1..2)) AND (exposure = :e)"
    assert narrowed.discover()["npartitions"] == 1
    assert int(narrowed.to_dask().exposure) == exposure


def test_bad_where_raises_query_syntax_error(repo):
    """A syntax error surfaces at search time with the column and the selection named."""
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with pytest.raises(QuerySyntaxError, match="column") as info:
        src.search(where="detector = = 2")
    assert info.value.column > 0
    assert any("'raw' in [rawexpr]" in note for note in info.value.__notes__)


def test_bad_where_in_catalog_args_raises_at_read(repo):
    """An invalid expression given at construction fails on first use, not silently."""
    src = SpherexSource("raw", str(repo), collections="rawexpr", where="detector ==")
    with pytest.raises(QuerySyntaxError):
        src.to_dask()


def test_unknown_name_lists_dimensions(repo):
    """A misspelt dimension raises the registry's UnknownNameError."""
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with pytest.raises(UnknownNameError, match="detector"):
        src.search("detectr = 2")


def test_conflicting_data_id_is_refused(repo):
    """Narrowing to another value of a fixed dimension is an error, not an empty result."""
    src = SpherexSource("raw", str(repo), collections="rawexpr", data_id={"detector": 1})
    with pytest.raises(DataIdError, match="detector"):
        src.search(detector=2)


def test_empty_selection_raises(repo):
    """No matching dataset is an actionable DatasetNotFoundError."""
    src = SpherexSource("raw", str(repo), collections="rawexpr", where="detector = 6")
    with pytest.raises(DatasetNotFoundError, match="query-datasets"):
        src.to_dask()


def test_missing_combinations_are_nan(repo, butler, no_compute):
    """A ragged selection is still a full cube; the missing cell is NaN."""
    exposure = _exposures(butler)[0]
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with no_compute():
        ds = src.search(f"NOT (exposure = {exposure} AND detector = 2)").to_dask()
    assert dict(ds.sizes) == {"exposure": 2, "detector": 2, "y": 32, "x": 32}
    missing = ds.image.sel(exposure=exposure, detector=2)
    assert bool(missing.isnull().all())
    assert not bool(ds.image.sel(exposure=exposure, detector=1).isnull().any())


def test_discover_reads_registry_and_headers_only(repo, no_compute):
    """discover() reports count, dims and dtypes without computing anything."""
    src = SpherexSource("raw", str(repo), collections="rawexpr")
    with no_compute():
        info = src.discover()
    assert info["npartitions"] == 4
    assert info["dtype"]["image"] == "float32"
    assert info["metadata"]["dims"] == {"exposure": 2, "detector": 2, "y": 32, "x": 32}
    assert info["shape"] == (2, 2, 32, 32)


def test_read_and_partitions_load_data(repo):
    """read() and read_partition() return in-memory data (Intake's contract)."""
    src = SpherexSource("dark", str(repo), collections="darkr")
    loaded = src.read()
    assert isinstance(loaded.image.data, np.ndarray)
    assert loaded.image.dims == ("detector", "y", "x")
    first = src.read_partition(0)
    assert isinstance(first.image.data, np.ndarray)
    assert int(first.detector) in (1, 2)
    assert len(list(src.read_chunked())) == 2


def test_component_and_parameters(repo, no_compute):
    """'raw.image' stacks one component; parameters reach the formatter (bbox)."""
    with no_compute():
        image = SpherexSource("raw.image", str(repo), collections="rawexpr").to_dask()
        cut = SpherexSource(
            "raw", str(repo), collections="rawexpr", parameters={"bbox": (0, 8, 0, 16)}
        ).to_dask()
    assert isinstance(image, xr.DataArray)
    assert image.dims == ("exposure", "detector", "y", "x")
    assert dict(cut.sizes) == {"exposure": 2, "detector": 2, "y": 8, "x": 16}


def test_source_pickles_for_workers(repo):
    """A source pickles by its arguments, before and after use, and reads the same data."""
    src = SpherexSource("raw", str(repo), collections="rawexpr").search("detector = 1")
    before = pickle.loads(pickle.dumps(src))
    expected = src.to_dask()
    after = pickle.loads(pickle.dumps(src))
    for copy in (before, after):
        assert copy.selection == src.selection
        xr.testing.assert_identical(copy.to_dask().compute(), expected.compute())
    pickle.dumps(expected)  # the lazy result travels too (no registry inside)


def test_repo_resolution_order(monkeypatch, tmp_path):
    """Explicit repo, then $SPHEREX_DASK_REPO, then the catalog's default, then demo-repo."""
    monkeypatch.delenv(REPO_ENV_VAR, raising=False)
    assert resolve_repo(None) == "demo-repo"
    assert resolve_repo("", default_repo=f"file://{tmp_path}/cat/../r") == str(tmp_path / "r")
    monkeypatch.setenv(REPO_ENV_VAR, "/from/env")
    assert resolve_repo("", default_repo="/x") == "/from/env"
    assert resolve_repo("/given") == "/given"


def test_drivers_registered_through_entry_points(repo):
    """intake finds both drivers by name (intake.drivers entry points)."""
    assert intake.registry["spherex_dask"] is SpherexSource
    assert intake.registry["spherex_dask_cat"] is SpherexCatalog
    src = intake.open_spherex_dask("dark", str(repo), collections=["darkr"])
    assert src.discover()["npartitions"] == 2


def test_live_catalog_lists_dataset_types(repo, no_compute):
    """The repository-backed catalog has one entry per dataset type with datasets."""
    cat = intake.open_spherex_dask_cat(str(repo))
    assert sorted(cat) == ["dark", "raw"]
    assert cat.raw.describe()["metadata"]["collections"] == ["rawexpr"]
    with no_compute():
        ds = cat.raw.search(detector=2).to_dask()
    assert ds.image.dims == ("exposure", "y", "x")
    only_raw = intake.open_spherex_dask_cat(str(repo), collections="rawexpr")
    assert list(only_raw) == ["raw"]
