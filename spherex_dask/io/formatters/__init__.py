# SPDX-License-Identifier: BSD-3-Clause
"""Formatters: one module per file format, registered explicitly in :func:`default_formatters`.

Importing this package is cheap: each formatter imports xarray, astropy, dask or zarr
only when it first reads or writes.
"""

from __future__ import annotations

from ._base import (
    Formatter,
    FormatterRegistry,
    SupportsComponents,
    SupportsReadParameters,
    check_parameters,
)
from ._fits import FitsImageFormatter
from ._json import JsonFormatter
from ._tables import EcsvFormatter, ParquetFormatter
from ._zarr import ZarrFormatter

__all__ = [
    "EcsvFormatter",
    "FitsImageFormatter",
    "Formatter",
    "FormatterRegistry",
    "JsonFormatter",
    "ParquetFormatter",
    "SupportsComponents",
    "SupportsReadParameters",
    "ZarrFormatter",
    "check_parameters",
    "default_formatters",
]


def default_formatters() -> FormatterRegistry:
    """A new registry holding the built-in formatters.

    Examples
    --------
    >>> sorted(default_formatters())
    ['ecsv', 'fits', 'json', 'parquet', 'zarr']
    """
    registry = FormatterRegistry()
    registry.register(FitsImageFormatter())
    registry.register(ZarrFormatter())
    registry.register(EcsvFormatter())
    registry.register(ParquetFormatter())
    registry.register(JsonFormatter())
    return registry
