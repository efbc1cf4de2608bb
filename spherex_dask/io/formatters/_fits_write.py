# SPDX-License-Identifier: BSD-3-Clause
"""Write a SpectralImage ``xarray.Dataset`` in the IRSA Level-2 FITS layout.

HDUs, in order: PRIMARY (``ds.attrs``), IMAGE, FLAGS, VARIANCE, ZODI, any other 2-D plane
(EXTNAME = upper-cased variable name), PSF, WCS-WAVE (when ``wavelength``/``bandwidth``
coordinates exist). Image data stream to the file one dask chunk row at a time, so a
dataset larger than memory can be written. ``BUNIT``, ``EXTNAME`` and the WCS cards follow
the FITS standard, so astropy, fitsverify and DS9 read the result.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Mapping
from typing import IO, Any, cast

import numpy as np
import xarray as xr
from astropy.io import fits

from ...errors import FormatterError
from .._fs import is_local, local_path, open_file, remove_local, staged_output
from ._fits_read import IMAGE_PLANES
from ._headers import attrs_to_header, set_pixel_origin
from ._spectral_wcs import ControlGrid

__all__ = ["write_fits"]

logger = logging.getLogger(__name__)

_BLOCK = 2880
_NAME_TO_EXTNAME = {v: k for k, v in IMAGE_PLANES.items()}
#: numpy dtype -> (BITPIX, BZERO or None, on-disk dtype)
_ENCODINGS: dict[str, tuple[int, int | None, str]] = {
    "u1": (8, None, ">u1"),
    "b1": (8, None, ">u1"),
    "i1": (8, -128, ">u1"),
    "i2": (16, None, ">i2"),
    "u2": (16, 32768, ">i2"),
    "i4": (32, None, ">i4"),
    "u4": (32, 2**31, ">i4"),
    "i8": (64, None, ">i8"),
    "u8": (64, 2**63, ">i8"),
    "f2": (-32, None, ">f4"),
    "f4": (-32, None, ">f4"),
    "f8": (-64, None, ">f8"),
}


def _encoding(dtype: np.dtype, name: str) -> tuple[int, int | None, np.dtype]:
    code = f"{dtype.kind}{dtype.itemsize}"
    if code not in _ENCODINGS:
        raise FormatterError(
            f"Variable {name!r} has dtype {dtype}, which FITS images cannot store."
        )
    bitpix, bzero, disk = _ENCODINGS[code]
    return bitpix, bzero, np.dtype(disk)


def _encode(block: np.ndarray, bzero: int | None, disk: np.dtype) -> bytes:
    if bzero is not None:  # unsigned / int8 convention: flip the sign bit
        unsigned = block.view(f"u{block.dtype.itemsize}")
        block = (
            unsigned ^ np.array(1 << (block.dtype.itemsize * 8 - 1), dtype=unsigned.dtype)
        ).view(f"i{block.dtype.itemsize}")
        if disk.itemsize == 1:
            block = block.view("u1")
    return np.ascontiguousarray(block, dtype=disk).tobytes()


def _pad(f: IO[bytes], written: int) -> None:
    if written % _BLOCK:
        f.write(b"\0" * (_BLOCK - written % _BLOCK))


def _write_image(
    f: IO[bytes], name: str, extname: str, var: xr.Variable, header: fits.Header
) -> None:
    """Write one image extension, streaming the data one dask chunk row at a time."""
    bitpix, bzero, disk = _encoding(var.dtype, name)
    cards = fits.Header(
        [("XTENSION", "IMAGE", "image extension"), ("BITPIX", bitpix), ("NAXIS", var.ndim)]
    )
    for axis, size in enumerate(reversed(var.shape), start=1):
        cards[f"NAXIS{axis}"] = size
    cards["PCOUNT"] = 0
    cards["GCOUNT"] = 1
    cards["EXTNAME"] = (extname, "extension name")
    if bzero is not None:
        cards["BSCALE"] = 1
        cards["BZERO"] = bzero
    cards.extend(header, unique=True)
    f.write(cards.tostring().encode("ascii"))
    data = var.data
    bounds = (
        np.cumsum((0, *data.chunks[0]))
        if hasattr(data, "chunks") and data.chunks
        else (0, var.shape[0])
    )
    written = 0
    for start, stop in itertools.pairwise(bounds):
        block = data[start:stop]
        block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        if block.dtype.kind == "b":
            block = block.astype("u1")
        written += f.write(_encode(block, bzero, disk))
    _pad(f, written)


def _write_hdu_bytes(f: IO[bytes], hdu: fits.BinTableHDU) -> None:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    f.write(buffer.getvalue()[_BLOCK:])  # skip the empty primary header written first


def _origin(ds: xr.Dataset, dims: tuple[str, ...]) -> tuple[int, int]:
    """Detector (x0, y0) of the first pixel, from integer ``y``/``x`` coordinates."""
    values = []
    for dim in reversed(dims):
        coord = ds.coords.get(dim)
        ok = coord is not None and coord.ndim == 1 and coord.size and coord.dtype.kind in "iu"
        values.append(int(coord.values[0]) if ok and coord is not None else 0)
    return values[0], values[1]


def _planes(ds: xr.Dataset) -> tuple[list[str], tuple[str, ...]]:
    names = [n for n in IMAGE_PLANES.values() if n in ds.data_vars]
    names += [str(n) for n in ds.data_vars if n not in names and n != "psf"]
    if not names:
        raise FormatterError(
            "A SpectralImage needs at least one 2-D variable (image, flags...); found none."
        )
    dims = ds[names[0]].dims
    bad = [n for n in names if ds[n].dims != dims or ds[n].ndim != 2]
    if bad:
        raise FormatterError(
            f"Variables {bad} are not 2-D on {dims}; the FITS layout stores 2-D planes (and a 3-D 'psf')."
        )
    return names, cast("tuple[str, ...]", dims)


def _spectral(ds: xr.Dataset, dims: tuple[str, ...], x0: int, y0: int) -> ControlGrid | None:
    if "wavelength" not in ds.coords or "bandwidth" not in ds.coords:
        return None
    wl, bw = ds.coords["wavelength"], ds.coords["bandwidth"]
    grid = ControlGrid.from_coordinate_attrs(dict(wl.attrs), dict(bw.attrs))
    if grid is None:
        ny, nx = ds.sizes[dims[0]], ds.sizes[dims[1]]
        grid = ControlGrid.sample(wl, bw, np.arange(x0, x0 + nx), np.arange(y0, y0 + ny))
    return grid


def _write_all(f: IO[bytes], ds: xr.Dataset) -> None:
    names, dims = _planes(ds)
    x0, y0 = _origin(ds, dims)
    grid = _spectral(ds, dims, x0, y0)
    primary = attrs_to_header(ds.attrs, drop_spectral_wcs=True)
    cards = fits.Header(
        [
            ("SIMPLE", True, "conforms to FITS standard"),
            ("BITPIX", 8),
            ("NAXIS", 0),
            ("EXTEND", True),
        ]
    )
    cards.extend(primary, unique=True)
    f.write(cards.tostring().encode("ascii"))
    for index, name in enumerate(names):
        attrs = set_pixel_origin(ds[name].attrs, x0, y0)
        header = attrs_to_header(attrs, drop_spectral_wcs=True)
        if index == 0 and grid is not None:
            cards, _ = grid.to_fits(x0, y0)
            header.extend(cards)
        _write_image(f, name, _NAME_TO_EXTNAME.get(name, name.upper()), ds[name].variable, header)
    if "psf" in ds.data_vars:
        _write_image(f, "psf", "PSF", ds["psf"].variable, attrs_to_header(ds["psf"].attrs))
    if grid is not None:
        _write_hdu_bytes(f, grid.to_fits(x0, y0)[1])


def write_fits(obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write a Dataset (or a named DataArray, as a one-plane image) to ``path``."""
    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=str(obj.name or "image"))
    if not isinstance(obj, xr.Dataset):
        raise FormatterError(
            f"The FITS image formatter writes xarray.Dataset objects, not {type(obj).__name__}."
        )
    with staged_output(path, storage_options) as target:
        try:
            with open_file(target, "wb") as f:
                _write_all(f, obj)
        except BaseException:
            if is_local(target):
                remove_local(local_path(target))
            raise
