# SPDX-License-Identifier: BSD-3-Clause
"""spherex_dask: organise and process SPHEREx survey data on the Pangeo stack.

The public API is the names in ``__all__``. The light value types are imported eagerly; the
classes that pull in xarray, zarr, astropy or dask (``Butler``, ``Pipeline``...) are imported on
first use, so that ``spherex-dask --help`` and registry-only scripts start fast (scientific
Python's SPEC 1 lazy loading, with the names spelled out here rather than generated).
"""

import typing as _typing

from ._lazy import lazy_exports as _lazy_exports
from .dimensions import DimensionUniverse
from .errors import SpherexDaskError
from .types import CollectionType, DataId, DatasetRef, DatasetType, Timespan

if _typing.TYPE_CHECKING:
    from .butler import Butler, FileDataset
    from .pipeline import Pipeline, PipelineTask, QuantumGraph
    from .registry import Registry

__version__ = "0.1.0"

#: Public name -> module that defines it, imported on first attribute access.
_LAZY = {
    "Butler": ".butler",
    "FileDataset": ".butler",
    "Registry": ".registry",
    "Pipeline": ".pipeline",
    "PipelineTask": ".pipeline",
    "QuantumGraph": ".pipeline",
}

__all__ = [
    "Butler",
    "CollectionType",
    "DataId",
    "DatasetRef",
    "DatasetType",
    "DimensionUniverse",
    "FileDataset",
    "Pipeline",
    "PipelineTask",
    "QuantumGraph",
    "Registry",
    "SpherexDaskError",
    "Timespan",
    "__version__",
]

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
