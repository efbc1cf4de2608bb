# SPDX-License-Identifier: BSD-3-Clause
"""Lazy, chunked reading of IRSA-layout FITS files into xarray.

Opening reads the headers (and the small WCS-WAVE table) only. Each dask chunk then reads
its own bytes: uncompressed image data by a seek and one read of the contiguous span that
covers the chunk (local files with the standard library, URLs through fsspec without
read-ahead), tile-compressed images through astropy's ``section``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from astropy.io import fits

from ...errors import FileMissingError, FormatterError, SpherexDaskError
from .._fs import is_local, local_path, open_file
from ._headers import header_to_attrs, is_spectral_wcs_key, pixel_origin, set_pixel_origin
from ._spectral_wcs import WCS_WAVE_EXTNAME

__all__ = ["FitsArrayProxy", "HduInfo", "FitsFile", "scan_fits"]

logger = logging.getLogger(__name__)

#: EXTNAME -> variable name of the IRSA Level-2 image planes, in file order.
IMAGE_PLANES = {"IMAGE": "image", "FLAGS": "flags", "VARIANCE": "variance", "ZODI": "zodi"}
PSF_EXTNAME = "PSF"
_NO_HEADER = fits.Header()
_CORRUPTION_SIGNS = ("Error validating header", "corrupt", "truncated")
_BITPIX_DTYPES = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}


@dataclass(frozen=True)
class HduInfo:
    """Where one image HDU's pixels are and how to decode them."""

    index: int
    name: str
    header: fits.Header
    offset: int
    shape: tuple[int, ...]
    disk_dtype: np.dtype
    dtype: np.dtype
    scale: tuple[float, float] | None
    compressed: bool


def _decoding(header: fits.Header) -> tuple[np.dtype, np.dtype, tuple[float, float] | None]:
    """(on-disk dtype, output dtype, (bscale, bzero) or None) of an image header."""
    bitpix = int(header["BITPIX"])
    disk = np.dtype(">" + _BITPIX_DTYPES[bitpix])
    bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
    if bscale == 1.0 and bzero == 0.0:
        return disk, disk.newbyteorder("="), None
    if bitpix > 8 and bscale == 1.0 and bzero == 2.0 ** (bitpix - 1):
        return disk, np.dtype(f"u{bitpix // 8}"), (bscale, bzero)
    if bitpix == 8 and bscale == 1.0 and bzero == -128.0:
        return disk, np.dtype("i1"), (bscale, bzero)
    out = np.dtype("f4") if bitpix in (8, 16, -32) else np.dtype("f8")
    return disk, out, (bscale, bzero)


@dataclass(frozen=True)
class FitsFile:
    """The scanned structure of one FITS file."""

    path: str
    images: dict[str, HduInfo]
    primary: fits.Header
    wave_table: fits.BinTableHDU | None


def _hdu_info(index: int, hdu: Any, size: int, path: str) -> HduInfo | None:
    header = hdu.header
    compressed = isinstance(hdu, fits.CompImageHDU)
    if not (compressed or isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU)) or not header.get(
        "NAXIS"
    ):
        return None
    shape = tuple(int(header[f"NAXIS{i}"]) for i in range(int(header["NAXIS"]), 0, -1))
    disk, dtype, scale = _decoding(header)
    offset = int(hdu.fileinfo()["datLoc"])
    if not compressed and offset + int(np.prod(shape)) * disk.itemsize > size:
        raise FormatterError(
            f"FITS file {path!r} is truncated: HDU {index} ({hdu.name}) needs "
            f"{offset + int(np.prod(shape)) * disk.itemsize} bytes, the file has {size}."
        )
    return HduInfo(index, hdu.name, header, offset, shape, disk, dtype, scale, compressed)


def scan_fits(path: str, storage_options: Mapping[str, Any] | None = None) -> FitsFile:
    """Read the headers of ``path`` (and the WCS-WAVE table), no pixels.

    Raises
    ------
    FileMissingError
        If the file does not exist.
    FormatterError
        If it is not a readable FITS file or is truncated.
    """
    kwargs = {} if is_local(path) else {"block_size": 1 << 16, "cache_type": "readahead"}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with open_file(path, "rb", storage_options=storage_options, **kwargs) as f:
                result = _scan_open_file(f, path)
    except SpherexDaskError:
        raise
    except FileNotFoundError as err:
        raise FileMissingError(f"FITS file {path!r} does not exist.") from err
    except Exception as err:  # astropy raises OSError, ValueError, VerifyError...
        raise FormatterError(f"Cannot read FITS file {path!r}: {err}") from err
    for warning in caught:
        text = str(warning.message)
        if any(sign in text for sign in _CORRUPTION_SIGNS):
            raise FormatterError(f"FITS file {path!r} is corrupt or truncated: {text.strip()}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result


def _scan_open_file(f: Any, path: str) -> FitsFile:
    size = _file_size(f)
    with fits.open(f, memmap=False, lazy_load_hdus=False) as hdul:
        images: dict[str, HduInfo] = {}
        for index, hdu in enumerate(hdul):
            info = _hdu_info(index, hdu, size, path)
            if info is not None:
                images.setdefault(info.name, info)
        table = None
        if WCS_WAVE_EXTNAME in hdul:
            table = hdul[WCS_WAVE_EXTNAME]
            table.data  # noqa: B018 - load the (small) table while the file is open
        return FitsFile(path, images, hdul[0].header, table)


def _file_size(f: Any) -> int:
    size = getattr(f, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(f.fileno()).st_size
    except (AttributeError, OSError):
        position = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(position)
        return int(end)


class FitsArrayProxy:
    """Array-like view of (a region of) one image HDU; indexing reads only the bytes needed."""

    def __init__(
        self,
        path: str,
        info: HduInfo,
        *,
        origin: tuple[int, ...],
        shape: tuple[int, ...],
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        self.info = replace(info, header=_NO_HEADER)  # tasks carry the layout, not the header
        self.origin = origin
        self.shape = shape
        self.storage_options = dict(storage_options or {})
        self.dtype = info.dtype
        self.ndim = len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        key = tuple(key) + (slice(None),) * (self.ndim - len(tuple(key)))
        starts, stops = [], []
        for k, origin, size in zip(key, self.origin, self.shape, strict=True):
            start, stop, step = k.indices(size)
            if step != 1:
                raise IndexError("FitsArrayProxy supports step-1 slices only")
            starts.append(origin + start)
            stops.append(origin + max(stop, start))
        if any(b <= a for a, b in zip(starts, stops, strict=True)):
            return np.empty([b - a for a, b in zip(starts, stops, strict=True)], dtype=self.dtype)
        if self.info.compressed:
            return self._read_compressed(starts, stops)
        return self._decode(self._read_raw(starts, stops))

    def _read_raw(self, starts: list[int], stops: list[int]) -> np.ndarray:
        """The block in native byte order: one pass over the bytes of its contiguous span."""
        shape, disk = self.info.shape, self.info.disk_dtype
        first = int(np.ravel_multi_index(starts, shape))
        count = int(np.ravel_multi_index([s - 1 for s in stops], shape)) - first + 1
        offset = self.info.offset + first * disk.itemsize
        span = (
            _map_local(self.path, offset, disk, count)
            if is_local(self.path)
            else _read_remote(self.path, self.storage_options, offset, disk, count)
        )
        if span is None:
            raise FormatterError(
                f"FITS file {self.path!r} ended early: HDU {self.info.name} wanted "
                f"{count * disk.itemsize} bytes at offset {offset}."
            )
        sizes = [b - a for a, b in zip(starts, stops, strict=True)]
        if span.size == int(np.prod(sizes)):  # full-width blocks: the span is the block
            block = span.reshape(sizes)
        else:
            strides = tuple(int(np.prod(shape[i + 1 :])) * disk.itemsize for i in range(len(shape)))
            block = np.lib.stride_tricks.as_strided(
                span, shape=sizes, strides=strides, writeable=False
            )
        return block.astype(disk.newbyteorder("="))

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        """Apply BSCALE/BZERO to native-order raw values (no copy when there is none)."""
        if self.info.scale is None:
            return raw
        bscale, bzero = self.info.scale
        if self.dtype.kind in "ui":
            # unsigned (or int8) convention: flipping the sign bit adds bzero exactly
            unsigned = raw.view(f"u{raw.dtype.itemsize}")
            sign = np.array(1 << (raw.dtype.itemsize * 8 - 1), dtype=unsigned.dtype)
            return (unsigned ^ sign).view(self.dtype)
        scaled = raw.astype(self.dtype) * self.dtype.type(bscale) + self.dtype.type(bzero)
        return scaled.astype(self.dtype, copy=False)

    def _read_compressed(self, starts: list[int], stops: list[int]) -> np.ndarray:
        index = tuple(slice(a, b) for a, b in zip(starts, stops, strict=True))
        try:
            with open_file(self.path, "rb", storage_options=self.storage_options) as f:
                with fits.open(f, memmap=False) as hdul:
                    return np.asarray(hdul[self.info.index].section[index]).astype(self.dtype)
        except SpherexDaskError:
            raise
        except Exception as err:
            raise FormatterError(
                f"Cannot read compressed HDU {self.info.name} of {self.path!r}: {err}"
            ) from err


def _map_local(path: str, offset: int, dtype: np.dtype, count: int) -> np.ndarray | None:
    """A read-only memory map of ``count`` items at ``offset`` (None if the file is too short)."""
    try:
        return np.memmap(local_path(path), dtype=dtype, mode="r", offset=offset, shape=(count,))
    except FileNotFoundError as err:
        raise FileMissingError(f"FITS file {path!r} disappeared after it was opened.") from err
    except ValueError:  # "mmap length is greater than file size"
        return None


def _read_remote(
    path: str, storage_options: Mapping[str, Any], offset: int, dtype: np.dtype, count: int
) -> np.ndarray | None:
    """``count`` items at ``offset`` fetched in one ranged read (None if the file is too short)."""
    with open_file(path, "rb", storage_options=storage_options, cache_type="none") as f:
        f.seek(offset)
        data = f.read(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype) if len(data) == count * dtype.itemsize else None


def image_attrs(
    info: HduInfo, file_origin: tuple[int, int], origin: tuple[int, int]
) -> dict[str, Any]:
    """Attrs of an image plane read from ``origin`` (detector pixels) of a file starting at ``file_origin``.

    The spectral WCS ``W`` cards are left out: the ``wavelength``/``bandwidth`` coordinates
    carry that solution, and the writer re-creates the cards from them.
    """
    attrs = {k: v for k, v in header_to_attrs(info.header).items() if not is_spectral_wcs_key(k)}
    if origin != file_origin:
        attrs = set_pixel_origin(attrs, *origin)
    return attrs


def file_origin(header: fits.Header) -> tuple[int, int]:
    """Detector (x0, y0) of a file's first pixel, from LTV1/LTV2 (0, 0 when absent)."""
    return pixel_origin({k: header.get(k) for k in ("LTV1", "LTV2") if k in header})
