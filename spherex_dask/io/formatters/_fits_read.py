# SPDX-License-Identifier: BSD-3-Clause
"""Lazy, chunked reading of IRSA-layout FITS files into xarray.

Opening reads the headers (and the small WCS-WAVE table) only, with the fast scanner of
:mod:`._fits_scan`; files it leaves aside (tile-compressed images, unusual headers) are
scanned by astropy. Each dask chunk then reads its own bytes: uncompressed image data in one
pass over the contiguous span that covers the chunk, tile-compressed images through
astropy's ``section``. A local file is memory-mapped and copied once, converting the byte
order on the way (faster than reading into a buffer and swapping it in place: 2.8 against
4-5 ms for a 16 MB plane); a URL is read into one buffer that is byte-swapped in place.
"""

from __future__ import annotations

import io
import logging
import mmap
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

import numpy as np

from ...errors import FileMissingError, FormatterError, SpherexDaskError
from .._fs import is_local, local_path, open_file
from ._fits_scan import EMPTY_HEADER, BinaryTable, FitsHeader, RawHdu, scan_layout
from ._headers import is_spectral_wcs_key, pixel_origin, set_pixel_origin
from ._spectral_wcs import WCS_WAVE_EXTNAME

__all__ = ["FitsArrayProxy", "FitsFile", "HduInfo", "scan_fits"]

logger = logging.getLogger(__name__)

#: EXTNAME -> variable name of the IRSA Level-2 image planes, in file order.
IMAGE_PLANES = {"IMAGE": "image", "FLAGS": "flags", "VARIANCE": "variance", "ZODI": "zodi"}
PSF_EXTNAME = "PSF"
_CORRUPTION_SIGNS = ("Error validating header", "corrupt", "truncated")
_BITPIX_DTYPES = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4", -64: "f8"}


@dataclass(frozen=True)
class HduInfo:
    """Where one image HDU's pixels are and how to decode them."""

    index: int
    name: str
    header: FitsHeader
    offset: int
    shape: tuple[int, ...]
    disk_dtype: np.dtype
    dtype: np.dtype
    scale: tuple[float, float] | None
    compressed: bool


def _decoding(header: Mapping[str, Any]) -> tuple[np.dtype, np.dtype, tuple[float, float] | None]:
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


def _image_info(
    index: int, name: str, header: FitsHeader, offset: int, compressed: bool
) -> HduInfo | None:
    """The HduInfo of an image HDU with data (``None`` for one without)."""
    if not header.get("NAXIS"):
        return None
    shape = tuple(int(header[f"NAXIS{i}"]) for i in range(int(header["NAXIS"]), 0, -1))
    disk, dtype, scale = _decoding(header)
    return HduInfo(index, name, header, offset, shape, disk, dtype, scale, compressed)


@dataclass(frozen=True)
class FitsFile:
    """The scanned structure of one FITS file."""

    path: str
    images: dict[str, HduInfo]
    primary: FitsHeader
    wave_table: BinaryTable | None


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
        raw = open_file(path, "rb", storage_options=storage_options, **kwargs)
        with cast("BinaryIO", raw) as f:
            size = _file_size(f)
            hdus = scan_layout(f, size, path)
            if hdus is not None:
                return _from_layout(f, hdus, path)
            return _scan_with_astropy(f, size, path)
    except SpherexDaskError:
        raise
    except FileNotFoundError as err:
        raise FileMissingError(f"FITS file {path!r} does not exist.") from err
    except Exception as err:  # astropy raises OSError, ValueError, VerifyError...
        raise FormatterError(f"Cannot read FITS file {path!r}: {err}") from err


def _from_layout(f: BinaryIO, hdus: list[RawHdu], path: str) -> FitsFile:
    images: dict[str, HduInfo] = {}
    table = None
    for hdu in hdus:
        name, header = hdu.name, hdu.header
        if hdu.index == 0 or header.get("XTENSION") == "IMAGE":
            info = _image_info(hdu.index, name, header, hdu.data_offset, False)
            if info is not None:
                images.setdefault(name, info)
        elif (
            table is None
            and name.upper() == WCS_WAVE_EXTNAME  # astropy's ``in hdul`` ignores case
            and header.get("XTENSION") == "BINTABLE"
        ):
            table = _read_table(f, hdu)
    return FitsFile(path, images, hdus[0].header, table)


def _read_table(f: BinaryIO, hdu: RawHdu) -> BinaryTable:
    f.seek(hdu.header_offset)
    raw = f.read(hdu.data_offset + hdu.data_size - hdu.header_offset)
    split = hdu.data_offset - hdu.header_offset
    return BinaryTable(hdu.header, raw[:split], raw[split:])


def _scan_with_astropy(f: BinaryIO, size: int, path: str) -> FitsFile:
    """The slow path: astropy reads the structure (compressed images, unusual headers)."""
    from astropy.io import fits

    f.seek(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(f, memmap=False, lazy_load_hdus=False) as hdul:
            images: dict[str, HduInfo] = {}
            table = None
            for index, hdu in enumerate(hdul):
                info = _astropy_hdu_info(index, hdu, size, path)
                if info is not None:
                    images.setdefault(info.name, info)
            if WCS_WAVE_EXTNAME in hdul:
                found = hdul[WCS_WAVE_EXTNAME]
                layout = found.fileinfo()
                raw = RawHdu(
                    0,
                    FitsHeader.from_astropy(found.header),
                    layout["hdrLoc"],
                    layout["datLoc"],
                    layout["datSpan"],
                )
                table = _read_table(f, raw)
            primary = FitsHeader.from_astropy(hdul[0].header)
    for warning in caught:
        text = str(warning.message)
        if any(sign in text for sign in _CORRUPTION_SIGNS):
            raise FormatterError(f"FITS file {path!r} is corrupt or truncated: {text.strip()}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return FitsFile(path, images, primary, table)


def _astropy_hdu_info(index: int, hdu: Any, size: int, path: str) -> HduInfo | None:
    from astropy.io import fits

    compressed = isinstance(hdu, fits.CompImageHDU)
    if not (compressed or isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU)):
        return None
    info = _image_info(
        index, hdu.name, FitsHeader.from_astropy(hdu.header), hdu.fileinfo()["datLoc"], compressed
    )
    if info is not None and not compressed:
        end = info.offset + int(np.prod(info.shape)) * info.disk_dtype.itemsize
        if end > size:
            raise FormatterError(
                f"FITS file {path!r} is truncated: HDU {index} ({hdu.name}) needs "
                f"{end} bytes, the file has {size}."
            )
    return info


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
        self.info = replace(info, header=EMPTY_HEADER)  # tasks carry the layout, not the header
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
        return self._read_raw(starts, stops)

    def _read_raw(self, starts: list[int], stops: list[int]) -> np.ndarray:
        """The decoded block, in native byte order, copied once from the file's bytes."""
        shape, disk = self.info.shape, self.info.disk_dtype
        first = int(np.ravel_multi_index(starts, shape))
        count = int(np.ravel_multi_index([s - 1 for s in stops], shape)) - first + 1
        offset = self.info.offset + first * disk.itemsize
        sizes = [b - a for a, b in zip(starts, stops, strict=True)]
        local = is_local(self.path)
        if local:
            span = _map_local(self.path, offset, disk, count)
        else:
            span = _read_remote(self.path, self.storage_options, offset, disk, count)
        if span is None:
            raise FormatterError(
                f"FITS file {self.path!r} ended early: HDU {self.info.name} wanted "
                f"{count * disk.itemsize} bytes at offset {offset}."
            )
        if span.size == int(np.prod(sizes)):  # full-width blocks: the span is the block
            return self._decode(span.reshape(sizes), owned=not local)
        strides = tuple(int(np.prod(shape[i + 1 :])) * span.itemsize for i in range(len(shape)))
        block = np.lib.stride_tricks.as_strided(span, shape=sizes, strides=strides, writeable=False)
        return self._decode(block, owned=False)

    def _decode(self, raw: np.ndarray, *, owned: bool) -> np.ndarray:
        """Output values of the raw block: one copy, none if ``raw`` is already a native buffer.

        ``owned`` says that ``raw`` is a writable, contiguous array of this read alone.
        """
        if self.info.scale is None:
            return raw if owned and raw.dtype == self.dtype else raw.astype(self.dtype)
        bscale, bzero = self.info.scale
        if self.dtype.kind in "ui":
            # unsigned (or int8) convention: flipping the sign bit adds bzero exactly
            native = raw.dtype.newbyteorder("=")
            signed = raw if owned and raw.dtype == native else raw.astype(native)
            unsigned = signed.view(f"u{signed.dtype.itemsize}")
            unsigned ^= np.array(1 << (signed.dtype.itemsize * 8 - 1), dtype=unsigned.dtype)
            return unsigned.view(self.dtype)
        scaled = raw.astype(self.dtype)
        scaled *= self.dtype.type(bscale)
        scaled += self.dtype.type(bzero)
        return scaled

    def _read_compressed(self, starts: list[int], stops: list[int]) -> np.ndarray:
        from astropy.io import fits

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
    """A read-only memory map of ``count`` items at ``offset`` (None if the file is too short).

    ``mmap`` is used directly: ``numpy.memmap`` costs about 0.4 ms more per 16 MB plane.
    """
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    try:
        with open(local_path(path), "rb") as f:
            mapped = mmap.mmap(
                f.fileno(),
                offset - start + count * dtype.itemsize,
                access=mmap.ACCESS_READ,
                offset=start,
            )
    except FileNotFoundError as err:
        raise FileMissingError(f"FITS file {path!r} disappeared after it was opened.") from err
    except ValueError:  # "mmap length is greater than file size"
        return None
    return np.frombuffer(mapped, dtype=dtype, count=count, offset=offset - start)


def _read_remote(
    path: str, storage_options: Mapping[str, Any], offset: int, dtype: np.dtype, count: int
) -> np.ndarray | None:
    """``count`` items at ``offset``, fetched in one ranged read into one buffer and byte-swapped
    in place to native order (None if the file is too short)."""
    buffer = np.empty(count, dtype=dtype)
    raw = open_file(path, "rb", storage_options=storage_options, cache_type="none")
    with cast("io.BufferedIOBase", raw) as f:
        f.seek(offset)
        got = f.readinto(buffer.data.cast("B"))
    if got != buffer.nbytes:
        return None
    if buffer.dtype.byteorder == ">":
        buffer.byteswap(inplace=True)
        return buffer.view(dtype.newbyteorder("="))
    return buffer


def image_attrs(
    info: HduInfo, file_origin: tuple[int, int], origin: tuple[int, int]
) -> dict[str, Any]:
    """Attrs of an image plane read from ``origin`` (detector pixels) of a file starting at ``file_origin``.

    The spectral WCS ``W`` cards are left out: the ``wavelength``/``bandwidth`` coordinates
    carry that solution, and the writer re-creates the cards from them.
    """
    attrs = {k: v for k, v in info.header.attrs().items() if not is_spectral_wcs_key(k)}
    if origin != file_origin:
        attrs = set_pixel_origin(attrs, *origin)
    return attrs


def file_origin(header: Mapping[str, Any]) -> tuple[int, int]:
    """Detector (x0, y0) of a file's first pixel, from LTV1/LTV2 (0, 0 when absent)."""
    return pixel_origin({k: header.get(k) for k in ("LTV1", "LTV2") if k in header})
