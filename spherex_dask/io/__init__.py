# SPDX-License-Identifier: BSD-3-Clause
"""The io layer: the file datastore, file templates, storage classes and formatters.

It knows files, fsspec, FITS, zarr, xarray and dask, and nothing of SQL. Importing it is
cheap: xarray, astropy, dask, zarr and fsspec load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._datastore import FileDatastore
from ._header_scan import read_primary_header
from ._storage_classes import StorageClass, StorageClassRegistry, default_storage_classes
from ._templates import DEFAULT_TEMPLATE, SPHEREX_TEMPLATES, FileTemplate, FileTemplates
from ._transfer import TRANSFER_MODES
from .formatters import (
    EcsvFormatter,
    FitsImageFormatter,
    Formatter,
    FormatterRegistry,
    JsonFormatter,
    ParquetFormatter,
    SupportsComponents,
    SupportsReadParameters,
    ZarrFormatter,
    default_formatters,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "DEFAULT_TEMPLATE",
    "SPHEREX_TEMPLATES",
    "TRANSFER_MODES",
    "EcsvFormatter",
    "FileDatastore",
    "FileTemplate",
    "FileTemplates",
    "FitsImageFormatter",
    "Formatter",
    "FormatterRegistry",
    "JsonFormatter",
    "ParquetFormatter",
    "StorageClass",
    "StorageClassRegistry",
    "SupportsComponents",
    "SupportsReadParameters",
    "ZarrFormatter",
    "add_spectral_coordinates",
    "default_formatters",
    "default_storage_classes",
    "read_primary_header",
]


def add_spectral_coordinates(ds: xr.Dataset, **kwargs: Any) -> xr.Dataset:
    """Rebuild the lazy ``wavelength``/``bandwidth`` coordinates of a zarr store opened with
    plain ``xarray.open_zarr``, from the model in its ``spectral_coordinates`` attribute.

    The zarr formatter stores that model (a grid of control points, bilinear between them)
    instead of two pixel planes, as IRSA FITS files do with their ``WCS-WAVE`` table; its own
    reader adds the coordinates itself. A Dataset without the attribute is returned unchanged.

    Examples
    --------
    ::

        import xarray as xr
        from spherex_dask.io import add_spectral_coordinates

        ds = add_spectral_coordinates(xr.open_zarr("repo/demo/run/dark_subtracted/....zarr"))
        ds.wavelength.sel(y=1020, x=1020).values
    """
    from .formatters._spectral_coords import add_spectral_coordinates as add

    return add(ds, **kwargs)
