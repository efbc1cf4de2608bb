# SPDX-License-Identifier: BSD-3-Clause
"""ZarrFormatter: the contract suite, plain-xarray readability, regions and components."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from spherex_dask.errors import FormatterError
from spherex_dask.io import FitsImageFormatter, ZarrFormatter, add_spectral_coordinates
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
    """xarray.open_zarr alone (no warnings) reads variables, pixel coordinates, FITS attrs and
    the spectral model; add_spectral_coordinates rebuilds the per-pixel coordinates from it."""
    path, arrays = level2()
    store = str(tmp_path / "image.zarr")
    source = FitsImageFormatter().read(path)
    ZarrFormatter().write(source, store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(store)
    np.testing.assert_array_equal(ds["flags"].values, arrays["FLAGS"])
    assert ds["image"].attrs["CTYPE1"] == "RA---TAN"
    assert ds.attrs["VERSION"] == "v20"
    assert (tmp_path / "image.zarr" / "zarr.json").exists()
    # The spectral coordinates are stored as their model, not as two pixel planes.
    assert "wavelength" not in ds.coords
    assert not (tmp_path / "image.zarr" / "wavelength").exists()
    spec = ds.attrs["spectral_coordinates"]
    assert spec["dims"] == ["y", "x"]
    assert spec["interpolation"] == "bilinear"
    assert spec["wavelength"]["units"] == "um"
    full = add_spectral_coordinates(ds)
    assert isinstance(full["wavelength"].data, da.Array)
    assert "spectral_coordinates" not in full.attrs
    for name in ("wavelength", "bandwidth"):
        np.testing.assert_array_equal(full[name].values, source[name].values)
        assert full[name].attrs == source[name].attrs
    # The formatter's own reader does the same, chunked like the image.
    ours = ZarrFormatter().read(store, parameters={"chunks": (16, 48)})
    assert ours["wavelength"].data.chunks == ours["image"].data.chunks
    xr.testing.assert_identical(ours.load(), source.chunk({"y": 16}).load())


def test_spectral_planes_written_when_not_model_backed(level2, tmp_path) -> None:
    """Coordinates that no longer agree with their grid (or have none) are written as planes."""
    path, _ = level2()
    source = FitsImageFormatter().read(path).load()
    changed = source.assign_coords(wavelength=source.wavelength * 2)
    changed["wavelength"].attrs = dict(source.wavelength.attrs)  # stale grid attrs kept
    store = str(tmp_path / "changed.zarr")
    ZarrFormatter().write(changed, store)
    ds = xr.open_zarr(store)
    assert "spectral_coordinates" not in ds.attrs
    np.testing.assert_array_equal(ds["wavelength"].values, changed["wavelength"].values)
    np.testing.assert_array_equal(ds["bandwidth"].values, source["bandwidth"].values)


def test_spectral_model_survives_bbox(level2, tmp_path) -> None:
    """A cut-out keeps detector pixel coordinates; its model gives the same wavelengths."""
    path, _ = level2()
    cut = FitsImageFormatter().read(path, parameters={"bbox": (5, 20, 7, 30)})
    store = str(tmp_path / "cut.zarr")
    ZarrFormatter().write(cut, store)
    assert "spectral_coordinates" in xr.open_zarr(store).attrs
    back = ZarrFormatter().read(store)
    np.testing.assert_array_equal(back["wavelength"].values, cut["wavelength"].values)
    np.testing.assert_array_equal(back["x"].values, cut["x"].values)


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


def test_fits_coordinates_fold_without_computing(level2, tmp_path, monkeypatch) -> None:
    """Coordinates straight from a reader are recognised by their dask names: writing them
    evaluates no pixel of the spectral model."""
    from spherex_dask.io.formatters import _spectral_wcs

    path, _ = level2()
    ds = FitsImageFormatter().read(path)

    def refuse(*args, **kwargs):
        raise AssertionError("the spectral model was evaluated")

    monkeypatch.setattr(_spectral_wcs.ControlGrid, "evaluate_plane", refuse)
    ZarrFormatter().write(ds, str(tmp_path / "a.zarr"))
    assert "spectral_coordinates" in xr.open_zarr(str(tmp_path / "a.zarr")).attrs
