# SPDX-License-Identifier: BSD-3-Clause
"""spherex_dask: organise and process SPHEREx survey data on the Pangeo stack."""

from .dimensions import DimensionUniverse
from .errors import SpherexDaskError
from .types import CollectionType, DataId, DatasetRef, DatasetType, Timespan

__version__ = "0.1.0"

__all__ = [
    "CollectionType",
    "DataId",
    "DatasetRef",
    "DatasetType",
    "DimensionUniverse",
    "SpherexDaskError",
    "Timespan",
    "__version__",
]
