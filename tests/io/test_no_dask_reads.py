# SPDX-License-Identifier: BSD-3-Clause
"""``chunks=False``: FITS and zarr reads without dask, as ``xarray.open_dataset`` without chunks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr

from spherex_dask.io import FitsImageFormatter, ZarrFormatter


def _no_dask(ds: xr.Dataset) -> None:
    for name, var in ds.variables.items():
        assert var.chunks is None, name


def test_fits_without_dask_reads_what_is_indexed(level2) -> None:
    path, arrays = level2()
    lazy = FitsImageFormatter().read(path)
    plain = FitsImageFormatter().read(path, parameters={"chunks": False})
    _no_dask(plain)
    assert not plain["image"].variable._in_memory  # nothing read yet
    xr.testing.assert_identical(plain.load(), lazy.load())
    again = FitsImageFormatter().read(path, parameters={"chunks": False})
    image = arrays["IMAGE"]
    np.testing.assert_array_equal(again["image"][5].values, image[5])
    np.testing.assert_array_equal(again["image"][3, 7].values, image[3, 7])
    np.testing.assert_array_equal(again["image"][::3, 10:2:-2].values, image[::3, 10:2:-2])
    np.testing.assert_array_equal(again["flags"][-1, -5:].values, arrays["FLAGS"][-1, -5:])
    np.testing.assert_array_equal(again["image"][2:2].values, image[2:2])
    np.testing.assert_array_equal(
        again["wavelength"][4, ::5].values, lazy["wavelength"][4, ::5].values
    )
    assert float(again["bandwidth"][1, 2]) == pytest.approx(float(lazy["bandwidth"][1, 2]))


def test_fits_without_dask_bbox_component_and_pickle(level2) -> None:
    path, arrays = level2()
    cut = FitsImageFormatter().read(path, parameters={"chunks": False, "bbox": (3, 9, 4, 20)})
    _no_dask(cut)
    np.testing.assert_array_equal(cut["image"].values, arrays["IMAGE"][3:9, 4:20])
    variance = FitsImageFormatter().read(path, parameters={"chunks": False}, component="variance")
    assert variance.chunks is None
    np.testing.assert_array_equal(variance.values, arrays["VARIANCE"])
    back = pickle.loads(pickle.dumps(FitsImageFormatter().read(path, parameters={"chunks": False})))
    np.testing.assert_array_equal(back["image"].values, arrays["IMAGE"])


def test_zarr_without_dask_and_writing_it_back(level2, tmp_path) -> None:
    path, _ = level2()
    source = FitsImageFormatter().read(path)
    store = str(tmp_path / "a.zarr")
    ZarrFormatter().write(source, store)
    plain = ZarrFormatter().read(store, parameters={"chunks": False})
    _no_dask(plain)
    xr.testing.assert_identical(plain.load(), source.load())
    # A no-dask read written again keeps the grid (sampled, not evaluated over all pixels).
    again = ZarrFormatter().read(store, parameters={"chunks": False})
    ZarrFormatter().write(again, str(tmp_path / "b.zarr"))
    assert "spectral_coordinates" in xr.open_zarr(str(tmp_path / "b.zarr")).attrs
    fits_plain = FitsImageFormatter().read(path, parameters={"chunks": False})
    ZarrFormatter().write(fits_plain, str(tmp_path / "c.zarr"))
    assert "spectral_coordinates" in xr.open_zarr(str(tmp_path / "c.zarr")).attrs
