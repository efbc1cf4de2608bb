# SPDX-License-Identifier: BSD-3-Clause
"""The direct zarr v3 writer: the stores it makes read as those of ``Dataset.to_zarr``."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from spherex_dask.io import ZarrFormatter
from spherex_dask.io.formatters._zarr_write import can_write_direct, write_direct


def _mixed() -> xr.Dataset:
    rng = np.random.default_rng(5)
    image = rng.normal(size=(10, 6)).astype(">f4")  # big-endian in, little-endian on disk
    image[0, 0] = np.nan
    return xr.Dataset(
        {
            "image": (("y", "x"), image, {"BUNIT": "e-/s", "GAIN": 1.5}),
            "flags": (("y", "x"), np.zeros((10, 6), np.int32)),  # all fill: no chunk files
            "mask": (("y", "x"), rng.random((10, 6)) > 0.5),
            "counts": (("y", "x"), rng.integers(0, 2**15, (10, 6)).astype(np.uint16)),
            "small": (("y", "x"), rng.integers(-100, 100, (10, 6)).astype(np.int8)),
            "phase": (("y", "x"), (rng.random((10, 6)) + 1j).astype(np.complex64)),
            "total": ((), np.float64(3.25)),
            "spectrum": ("w", np.linspace(0.75, 5.0, 4)),
        },
        coords={
            "y": np.arange(100, 110),
            "x": np.arange(6),
            "w": np.arange(4),
            "airmass": (("y",), np.linspace(1, 2, 10)),
            "lonely": (("z",), np.arange(3.0)),
        },
        attrs={"VERSION": "v20", "list": [1, 2]},
    )


ENCODING = {name: {"chunks": (4, 4)} for name in ("image", "flags", "mask", "counts", "small")}


def test_reads_like_to_zarr(tmp_path) -> None:
    """Plain xarray reads the same Dataset from the direct store as from to_zarr's."""
    ds = _mixed()
    ours, theirs = str(tmp_path / "ours.zarr"), str(tmp_path / "theirs.zarr")
    assert can_write_direct(ds)
    write_direct(ds, ours, ENCODING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        ds.to_zarr(theirs, zarr_format=3, consolidated=True, encoding=ENCODING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = xr.open_zarr(ours, consolidated=True).load()
    b = xr.open_zarr(theirs, consolidated=True).load()
    xr.testing.assert_identical(a, b)
    xr.testing.assert_equal(a, ds)
    assert a["image"].dtype == np.dtype("<f4")
    assert a["image"].encoding["chunks"] == (4, 4)
    # Without the consolidated metadata too (each array's own zarr.json).
    xr.testing.assert_identical(xr.open_zarr(ours, consolidated=False).load(), a)


def test_zarr_parses_metadata_and_chunks(tmp_path) -> None:
    """zarr itself validates every zarr.json; edge chunks are padded, fill chunks absent."""
    ds = _mixed()
    store = tmp_path / "ours.zarr"
    write_direct(ds, str(store), ENCODING)
    group = zarr.open_group(str(store), mode="r", zarr_format=3)
    np.testing.assert_array_equal(group["image"][:], ds["image"].values)
    np.testing.assert_array_equal(group["counts"][:], ds["counts"].values)
    assert group["image"].chunks == (4, 4)
    assert group["total"][()] == 3.25
    assert group["image"].metadata.dimension_names == ("y", "x")
    # 10 x 6 in 4 x 4 chunks: 3 x 2 chunk files, none for the all-zero flags.
    assert len(list((store / "image" / "c").rglob("*"))) == 3 + 6
    assert not (store / "flags" / "c").exists()
    root = json.loads((store / "zarr.json").read_text())
    assert root["attributes"]["coordinates"] == "lonely"
    assert root["consolidated_metadata"]["metadata"]["image"]["attributes"]["coordinates"] == (
        "airmass"
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"time": ("t", pd.date_range("2025-05-01", periods=3).values)},
        {"label": ("t", np.array(["a", "bb", "c"]))},
    ],
)
@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_other_dtypes_fall_back_to_to_zarr(tmp_path, extra) -> None:
    """Dates and strings are not core zarr v3 types: the formatter lets xarray encode them."""
    ds = xr.Dataset({"image": (("y", "x"), np.ones((3, 3), np.float32))}, coords=extra)
    assert not can_write_direct(ds)
    with pytest.raises(ValueError, match="core zarr"):
        write_direct(ds, str(tmp_path / "x.zarr"))
    store = str(tmp_path / "ok.zarr")
    ZarrFormatter().write(ds, store)
    xr.testing.assert_identical(xr.open_zarr(store).load(), ds)


def test_refuses_existing_path(tmp_path) -> None:
    """A store is never written over."""
    ds = xr.Dataset({"image": (("y", "x"), np.ones((2, 2), np.float32))})
    write_direct(ds, str(tmp_path / "a.zarr"))
    with pytest.raises(FileExistsError):
        write_direct(ds, str(tmp_path / "a.zarr"))


def test_chunks_near_the_fill_value_round_trip(tmp_path) -> None:
    """Only chunks equal to the fill value are left out: NaN + 0j is not NaN + NaN j, and an
    all-NaN float chunk reads back as NaN."""
    phase = np.full((4, 4), complex(np.nan, 0.0), dtype=np.complex128)
    image = np.full((4, 4), np.nan, dtype=np.float32)
    image[:2] = 1.0
    ds = xr.Dataset({"phase": (("y", "x"), phase), "image": (("y", "x"), image)})
    store = tmp_path / "edge.zarr"
    write_direct(ds, str(store), {"phase": {"chunks": (2, 2)}, "image": {"chunks": (2, 4)}})
    back = xr.open_zarr(str(store)).load()
    np.testing.assert_array_equal(back["phase"].values.imag, 0.0)
    np.testing.assert_array_equal(back["image"].values, image)
    assert len(list((store / "image" / "c").rglob("*"))) == 1 + 1  # one row of chunks kept


def test_load_for_writing_computes_in_one_pass_without_copying_one_chunk_results() -> None:
    import dask
    import dask.array as da

    from spherex_dask.io.formatters._zarr_io import load_for_writing

    made = np.arange(48.0).reshape(6, 8)
    one = da.from_delayed(dask.delayed(lambda: made)(), (6, 8), made.dtype)  # one chunk
    many = da.from_array(made, chunks=(4, 3)) * 2  # 2 x 3 chunks
    ds = xr.Dataset(
        {
            "one": (("y", "x"), one, {"BUNIT": "e-/s"}),
            "many": (("y", "x"), many),
            "row": (("x",), da.arange(8, chunks=3)),
            "total": ((), da.sum(many)),
            "plain": (("y", "x"), made + 1),
        },
        coords={"y": np.arange(6), "weight": (("y", "x"), da.ones((6, 8), chunks=4))},
    )
    with dask.config.set(scheduler="synchronous"):
        out = load_for_writing(ds)
        assert np.shares_memory(out["one"].values, made)  # the task's own array
        assert not np.shares_memory(ds.compute()["one"].values, made)  # what compute gives
    assert all(isinstance(v.data, np.ndarray) for v in out.variables.values())
    np.testing.assert_array_equal(out["many"].values, made * 2)
    np.testing.assert_array_equal(out["row"].values, np.arange(8))
    assert out["total"].values == (made * 2).sum()
    np.testing.assert_array_equal(out["weight"].values, np.ones((6, 8)))
    assert out["one"].attrs == {"BUNIT": "e-/s"}
    assert isinstance(ds["one"].data, da.Array)  # the input is left lazy
