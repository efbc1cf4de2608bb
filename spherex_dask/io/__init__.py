# SPDX-License-Identifier: BSD-3-Clause
"""The io layer: the file datastore, file templates, storage classes and formatters.

It knows files, fsspec, FITS, zarr, xarray and dask, and nothing of SQL. Importing it is
cheap: xarray, astropy, dask, zarr and fsspec load on first use.
"""

from __future__ import annotations

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
    "default_formatters",
    "default_storage_classes",
    "read_primary_header",
]
