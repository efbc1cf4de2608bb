# SPDX-License-Identifier: BSD-3-Clause
"""FITS image formatter: SpectralImage <-> the IRSA Level-2 multi-extension layout.

Reading returns an ``xarray.Dataset`` whose variables ``image``, ``flags``, ``variance``,
``zodi`` (those present, plus any other 2-D extension under its lower-cased EXTNAME) lie
on dims ``(y, x)``, backed by dask arrays that read their own bytes only when computed
(or, with ``chunks=False``, by xarray lazy arrays that read what is indexed, without dask).
Coordinates: ``y``/``x`` (detector pixels, 0-based) and, when the file has the spectral
WCS ``W``, lazy ``wavelength``/``bandwidth`` (um). Headers become attrs (PRIMARY on the
Dataset, each extension's on its variable).

Read parameters
---------------
bbox
    Region to read, in the file's array pixels: ``(y0, y1, x0, x1)``, ``(slice_y,
    slice_x)`` or ``{"y": (y0, y1), "x": (x0, x1)}`` (end exclusive). The attrs' WCS
    ``CRPIXn`` cards are shifted and ``LTV1``/``LTV2`` record the offset, so a cut-out
    written back keeps its sky and wavelength solution.
chunks
    Dask chunks of the (y, x) planes, as xarray takes them: an int, ``(cy, cx)``,
    ``{"y": cy, "x": cx}`` (``-1`` the whole axis) or ``"auto"`` (dask's
    ``array.chunk-size``, also per axis); default (``None`` or ``{}``) one chunk per plane
    up to 64 MiB (a 2040 x 2040 frame is one chunk), else
    full-width row bands of about 64 MiB. A chunk is read whole when any of it is used,
    so ask for smaller chunks (or a ``bbox``) to read small parts of large planes.
    ``chunks=False``: no dask, as ``xarray.open_dataset`` without ``chunks``: variables read
    on access what their indexing selects (``.values`` reads a plane once, with no graph,
    scheduler or extra copy: the fastest way to read whole images in a loop).
include_psf
    Also return the PSF cube as variable ``psf`` on ``(psf_zone, psf_y, psf_x)``.

Components: each plane, ``psf``, ``wavelength`` and ``bandwidth``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar, cast

from .._fs import open_file
from ._base import Formatter, check_parameters

__all__ = ["FitsImageFormatter"]

logger = logging.getLogger(__name__)

_MAGIC = b"SIMPLE  ="


class FitsImageFormatter(Formatter):
    """SpectralImage as IRSA-layout multi-extension FITS (see the module docstring).

    Examples
    --------
    >>> FitsImageFormatter().can_read("missing.fits")
    False
    """

    name: ClassVar[str] = "fits"
    extensions: ClassVar[tuple[str, ...]] = (".fits", ".fit", ".fts", ".fits.fz")
    storage_classes: ClassVar[tuple[str, ...]] = ("SpectralImage",)

    def supported_parameters(self) -> frozenset[str]:
        """``bbox``, ``chunks`` and ``include_psf``."""
        from ._fits_dataset import FITS_READ_PARAMETERS

        return FITS_READ_PARAMETERS

    def read(
        self,
        path: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        component: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Open ``path`` lazily; see the module docstring for parameters and components."""
        from ._fits_dataset import open_fits

        check_parameters(self, parameters, path)
        return open_fits(
            path, parameters=parameters, component=component, storage_options=storage_options
        )

    def write(
        self, obj: Any, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Write a Dataset in the IRSA layout (dask data stream chunk row by chunk row)."""
        from ._fits_write import write_fits

        write_fits(obj, path, storage_options=storage_options)

    def can_read(self, path: str, *, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether the file starts with the FITS ``SIMPLE  =`` card and is whole.

        Whole: no header cut short and no HDU's data reaching past the end of the file (only
        the headers' structural keywords are read), so that ingest refuses a truncated copy.
        """
        from ._fits_scan import is_truncated

        try:
            with open_file(path, "rb", storage_options=storage_options) as f:
                if f.read(len(_MAGIC)) != _MAGIC:
                    return False
                f.seek(0, 2)
                return not is_truncated(cast("BinaryIO", f), f.tell())
        except (OSError, ValueError):
            return False

    def list_components(
        self, path: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> tuple[str, ...]:
        """The planes, ``psf`` and spectral coordinates present in the file."""
        from ._fits_dataset import list_fits_components

        return list_fits_components(path, storage_options)
