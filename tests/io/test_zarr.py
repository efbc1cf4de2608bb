# SPDX-License-Identifier: BSD-3-Clause
"""ZarrFormatter: the contract suite, plain-xarray readability, regions and components."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import FormatterError
from spherex_dask.io import FitsImageFormatter, ZarrFormatter
from spherex_dask.testing.formatters import FormatterTests


class TestZarrFormatter(FormatterTests):
    """The shared formatter contract, for zarr v3 stores."""

    @pytest.fixture
    def formatter(self) -> ZarrFormatter:
        return ZarrFormatter()

    @pytest.fixture
    def sample(self, level2) -> xr.Dataset:
        path, _ = level2()
        return FitsImageFormatter().read(path)

    def assert_same(self, expected: xr.Dataset, actual: xr.Dataset) -> None:
        xr.testing.assert_identical(expected.load(), actual.load())

    def load(self, obj: xr.Dataset) -> xr.Dataset:
        return obj.load()


def test_plain_xarray_reads_store(level2, tmp_path) -> None:
    """xarray.open_zarr alone (no warnings) reads variables, coordinates and FITS attrs."""
    path, arrays = level2()
    store = str(tmp_path / "image.zarr")
    ZarrFormatter().write(FitsImageFormatter().read(path), store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store)
    np.testing.assert_array_equal(ds["flags"].values, arrays["FLAGS"])
    assert ds["image"].attrs["CTYPE1"] == "RA---TAN"
    assert ds.attrs["VERSION"] == "v20"
    assert "wavelength" in ds.coords
    assert ds["wavelength"].attrs["units"] == "um"
    assert (tmp_path / "image.zarr" / "zarr.json").exists()


def test_bbox_chunks_and_component(level2, tmp_path) -> None:
    """bbox selects array pixels (WCS attrs shifted), chunks rechunk, component picks one."""
    path, arrays = level2()
    fits_cut = FitsImageFormatter().read(path, parameters={"bbox": (3, 9, 4, 20)})
    store = str(tmp_path / "image.zarr")
    ZarrFormatter().write(FitsImageFormatter().read(path), store)
    cut = ZarrFormatter().read(store, parameters={"bbox": (3, 9, 4, 20), "chunks": (2, 8)})
    np.testing.assert_array_equal(cut["image"].values, arrays["IMAGE"][3:9, 4:20])
    assert cut["image"].data.chunks == ((2, 2, 2), (8, 8))
    assert cut["image"].attrs == fits_cut["image"].attrs
    variance = ZarrFormatter().read(store, component="variance")
    assert isinstance(variance, xr.DataArray)
    np.testing.assert_array_equal(variance.values, arrays["VARIANCE"])
    assert ZarrFormatter().read(store, component="wavelength").dims == ("y", "x")
    assert set(ZarrFormatter().list_components(store)) >= {
        "image",
        "flags",
        "wavelength",
        "bandwidth",
    }


def test_irregular_chunks_and_json_unsafe_attrs(tmp_path) -> None:
    """Irregular dask chunks are made regular; numpy and tuple attrs become JSON."""
    image = da.ones((10, 6), chunks=((3, 5, 2), (6,)), dtype=np.float32)
    ds = xr.Dataset({"image": (("y", "x"), image, {"GAIN": np.float32(1.5), "AXES": (1, 2)})})
    store = str(tmp_path / "odd.zarr")
    ZarrFormatter().write(ds, store)
    back = xr.open_zarr(store)
    assert back["image"].attrs == {"GAIN": 1.5, "AXES": [1, 2]}
    np.testing.assert_array_equal(back["image"].values, np.ones((10, 6)))


def test_refuses_existing_store(level2, tmp_path) -> None:
    """Writing over an existing store fails instead of mixing two datasets."""
    store = str(tmp_path / "a.zarr")
    ds = xr.Dataset({"image": (("y", "x"), np.zeros((2, 2), np.float32))})
    ZarrFormatter().write(ds, store)
    with pytest.raises(Exception, match=r"exist|contains"):
        ZarrFormatter().write(ds, store)


def test_bbox_needs_image(tmp_path) -> None:
    """bbox on a store without 2-D variables is a FormatterError."""
    store = str(tmp_path / "line.zarr")
    ZarrFormatter().write(xr.Dataset({"spectrum": ("w", np.arange(3.0))}), store)
    with pytest.raises(FormatterError, match="no 2-D variable"):
        ZarrFormatter().read(store, parameters={"bbox": (0, 1, 0, 1)})
