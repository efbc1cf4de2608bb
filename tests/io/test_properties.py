# SPDX-License-Identifier: BSD-3-Clause
"""Hypothesis round trips of small random images through the image formatters."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex_dask.io import FitsImageFormatter, ZarrFormatter

_HEADER_KEYS = st.sampled_from(["BUNIT", "DETECTOR", "OBSID", "EXPTIME", "GAIN"])
_HEADER_VALUES = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.floats(allow_nan=False, allow_infinity=False).map(
        lambda v: float(f"{v:.12g}")
    ),  # FITS cards: 20 chars
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_ ", max_size=20).map(str.rstrip),
    st.booleans(),
)


@st.composite
def images(draw: st.DrawFn) -> xr.Dataset:
    shape = draw(st.tuples(st.integers(1, 9), st.integers(1, 9)))
    image = draw(
        hnp.arrays(np.float32, shape, elements=st.floats(-1e6, 1e6, width=32, allow_nan=False))
    )
    flags = draw(hnp.arrays(np.int32, shape))
    attrs = draw(st.dictionaries(_HEADER_KEYS, _HEADER_VALUES, max_size=4))
    return xr.Dataset(
        {"image": (("y", "x"), image, attrs), "flags": (("y", "x"), flags)},
        coords={"y": np.arange(shape[0]), "x": np.arange(shape[1])},
        attrs={"VERSION": draw(st.sampled_from(["v1", "v20"]))},
    )


@settings(max_examples=25, deadline=None)
@given(ds=images())
def test_fits_round_trip(ds: xr.Dataset) -> None:
    """FITS: values, dtypes and header attrs survive."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "image.fits")
        FitsImageFormatter().write(ds, path)
        xr.testing.assert_identical(FitsImageFormatter().read(path).load(), ds)


@settings(max_examples=15, deadline=None)
@given(ds=images())
def test_zarr_round_trip(ds: xr.Dataset) -> None:
    """zarr: values, dtypes and attrs survive."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "image.zarr")
        ZarrFormatter().write(ds, path)
        xr.testing.assert_identical(ZarrFormatter().read(path).load(), ds)
